"""Replay a PyTorch run of the W2 recipe in mdl: same initial weights, same
batch order, then compare the two runs.

    python3 replay_torch.py DATA_DIR OUT_DIR SEED N EPOCHS
    python3 replay_torch.py compare OUT_DIR

writes into OUT_DIR
    init.safetensors     PyTorch's initial weights under mdl's names
    x.idx, y.idx         EPOCHS passes over the first N training samples,
                         each in the order of PyTorch's permutation for
                         that epoch, one after the other (u8 IDX files)
    torch.safetensors    PyTorch's weights after training on them
and prints PyTorch's test accuracy after each epoch.  bench/replay.sh
trains mdl on the same files for one epoch (--load init.safetensors
--no-shuffle, saving mdl.safetensors) and `compare` prints the largest
difference per parameter.  Keep N a multiple of 64: then the batches of
one long mdl epoch are exactly PyTorch's batches.
"""
import json
import struct
import sys

import numpy as np
import torch

from peer_torch import idx, w2_model

NAMES = ["h1", "h2", "logits"]


def save_safetensors(path, tensors):
    header, blobs, at = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype=np.float32)
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [at, at + a.nbytes]}
        blobs.append(a.tobytes())
        at += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_idx(path, a):
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 8, a.ndim) + struct.pack(">" + "I" * a.ndim, *a.shape))
        f.write(np.ascontiguousarray(a, dtype=np.uint8).tobytes())


def mdl_params(model):
    out = {}
    for name, layer in zip(NAMES, [model[0], model[2], model[4]]):
        out[name + ".W"] = layer.weight.detach().numpy().T  # mdl: x @ W, W [in, out]
        out[name + ".b"] = layer.bias.detach().numpy()
    return out


def load_safetensors(path):
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    out = {}
    for name, t in json.loads(b[8:8 + n]).items():
        if name != "__metadata__" and t["dtype"] == "F32":
            s, e = t["data_offsets"]
            out[name] = np.frombuffer(b[8 + n + s:8 + n + e], np.float32).reshape(t["shape"])
    return out


def compare(out):
    init, ref, got = (load_safetensors(out + f) for f in ("/init.safetensors", "/torch.safetensors", "/mdl.safetensors"))
    for name in ref:
        print(f"{name:10s} max |mdl - torch| {np.abs(got[name] - ref[name]).max():.3g}"
              f"   max |torch - init| {np.abs(ref[name] - init[name]).max():.3g}")


def main(d, out, seed, n, epochs):
    x = idx(d + "/train-images-idx3-ubyte.gz")[:n]
    y = idx(d + "/train-labels-idx1-ubyte.gz")[:n]
    tx = torch.from_numpy(idx(d + "/t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255)
    ty = torch.from_numpy(idx(d + "/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    xf = torch.from_numpy(x.reshape(-1, 784).astype(np.float32) / 255)
    yl = torch.from_numpy(y.astype(np.int64))
    torch.manual_seed(seed)
    model = w2_model()
    save_safetensors(out + "/init.safetensors", mdl_params(model))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    perms, accs = [], []
    for _ in range(epochs):
        perm = torch.randperm(n)
        perms.append(perm.numpy())
        for i in range(0, n, 64):
            j = perm[i:i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xf[j]), yl[j]).backward()
            opt.step()
        with torch.no_grad():
            accs.append(float((model(tx).argmax(1) == ty).float().mean()))
    order = np.concatenate(perms)
    write_idx(out + "/x.idx", x[order])
    write_idx(out + "/y.idx", y[order])
    save_safetensors(out + "/torch.safetensors", mdl_params(model))
    print(f"torch seed {seed} n {n} test_acc", " ".join(f"{a:.4f}" for a in accs))


if __name__ == "__main__":
    if sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2]))
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
