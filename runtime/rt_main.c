/*
 * rt_main.c - main() of every executable mdlc builds.
 *
 * This is the only file that names `mdl_model`, the descriptor the
 * generated code defines; everything else takes the model as a pointer.
 * Keeping the reference here means a test (or another front end) can link
 * libmdlrt.a with its own main() and its own descriptors without this
 * object, and the undefined symbol, being pulled in.
 */
#include "rt_internal.h"

int main(int argc, char **argv) { return rt_main(&mdl_model, argc, argv); }
