/*
 * rt_idx.c - IDX files, the format of MNIST and Fashion-MNIST.
 *
 *     00 00 TYPE RANK   magic: two zero bytes, the element type, the rank
 *     RANK x u32        the dimensions, big-endian; the first is the
 *                       number of samples
 *     data              row-major, big-endian elements
 *
 * TYPE: 08 u8, 09 i8, 0B i16, 0C i32, 0D f32, 0E f64.  A sample (all the
 * dimensions after the first) must have as many elements as the tensor it
 * feeds takes per sample; the shapes may differ ([N, 28, 28] images feed
 * an f32[B, 784] input as well as an f32[B, 1, 28, 28] one).  Values are
 * converted as they are: u8 pixels become 0..255 in f32, u8 labels class
 * numbers in i32.  The file must be exactly as long as its header says.
 */
#include "rt_internal.h"

#include <stdlib.h>

static int elem_type(int code, rt_elem_type *type) {
    switch (code) {
    case 0x08: *type = (rt_elem_type){RT_ELEM_UINT, 1, 1, "u8"}; return 0;
    case 0x09: *type = (rt_elem_type){RT_ELEM_INT, 1, 1, "i8"}; return 0;
    case 0x0B: *type = (rt_elem_type){RT_ELEM_INT, 2, 1, "i16"}; return 0;
    case 0x0C: *type = (rt_elem_type){RT_ELEM_INT, 4, 1, "i32"}; return 0;
    case 0x0D: *type = (rt_elem_type){RT_ELEM_FLOAT, 4, 1, "f32"}; return 0;
    case 0x0E: *type = (rt_elem_type){RT_ELEM_FLOAT, 8, 1, "f64"}; return 0;
    default: return -1;
    }
}

/* Bigger than any array we could allocate, small enough not to overflow. */
#define IDX_MAX_ELEMS ((int64_t)1 << 40)

static rt_dataset *parse(const char *path, const unsigned char *buf, size_t len, const rt_tensor *t, char **take) {
    if (len < 4) {
        rt_error("%s: truncated: %zu bytes, shorter than the 4-byte IDX magic", path, len);
        return NULL;
    }
    rt_elem_type type;
    if (buf[0] != 0 || buf[1] != 0 || elem_type(buf[2], &type) || buf[3] == 0) {
        rt_error("%s: not an IDX file: magic %02x %02x %02x %02x (IDX starts 00 00, an element type 08-0e, a rank "
                 "of at least 1)",
                 path, buf[0], buf[1], buf[2], buf[3]);
        return NULL;
    }
    int rank = buf[3];
    size_t header = 4 + 4 * (size_t)rank;
    if (len < header) {
        rt_error("%s: truncated: %zu bytes, shorter than the %zu-byte header of a rank-%d IDX file", path, len, header,
                 rank);
        return NULL;
    }
    int64_t dims[256], total = 1;
    for (int i = 0; i < rank; i++) {
        const unsigned char *p = buf + 4 + 4 * i;
        dims[i] = (int64_t)p[0] << 24 | (int64_t)p[1] << 16 | (int64_t)p[2] << 8 | (int64_t)p[3];
        if (dims[i] > 0 && total > IDX_MAX_ELEMS / dims[i]) {
            rt_error("%s: the dimensions in its header are too large", path);
            return NULL;
        }
        total *= dims[i];
    }
    return rt_data_from_array(path, buf + header, len - header, type, dims, rank, total, t, take);
}

rt_dataset *rt_idx_parse(const char *path, const unsigned char *buf, size_t len, const rt_tensor *t) {
    return parse(path, buf, len, t, NULL);
}

rt_dataset *rt_idx_read(const char *path, char **take, size_t len, const rt_tensor *t) {
    return parse(path, (const unsigned char *)*take, len, t, take);
}
