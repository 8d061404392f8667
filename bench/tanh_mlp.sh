#!/bin/sh
# Training speed of a tanh MLP (784-512-512-512-10, softmax cross-entropy,
# Adam 1e-3, batch 64) on the first N Fashion-MNIST images, one thread: the
# workload where exp and tanh matter (codegen/cg_vmath.c; with libm's
# tanhf/expm1f they took ~30% of an epoch).  Prints samples per second of
# mdl (the executable's own --log timing), of a second mdlc given as
# MDLC_BEFORE (to compare two builds), and of PyTorch on the same model,
# alternating REPEAT times, medians.
# With ACTS="relu tanh sigmoid gelu" (activations the language knows), the
# same MLP is built once per activation and each is printed beside the
# first as a ratio: the check that a smooth activation trains within 10%
# of ReLU's speed (PyTorch is then left out).
#   sh bench/tanh_mlp.sh [N_IMAGES [REPEAT]]   (from the repository root,
#   after building into build/; needs dataset-fashion-mnist, and
#   python3-torch for the PyTorch column; Debian's torch uses whatever
#   libblas.so.3 points to, and the reference BLAS of libblas3 makes it
#   some 20x slower than with libopenblas0 installed)
set -eu
n=${1:-20000} repeat=${2:-3}
export MDL_THREADS=1 OMP_WAIT_POLICY=PASSIVE
MDLC=${MDLC:-build/mdlc}
D=${DATA:-/usr/share/datasets/fashion-mnist}
PY=${PYTHON:-/usr/bin/python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# the MLP with activation $1
mlp() {
    cat <<EOF
model ${1}_mlp
input  image: f32[B, 28, 28]
target label: i32[B]
x      = reshape(image, [B, 784]) / 255
h1     = $1(dense(x, 512))
h2     = $1(dense(h1, 512))
h3     = $1(dense(h2, 512))
logits = dense(h3, 10)
loss   sparse_cross_entropy(logits, label)
metric acc = accuracy(logits, label)
train  adam(lr = 1e-3), batch = 64, epochs = 1
EOF
}
mlp tanh > "$work/tanh_mlp.mdl"
"$MDLC" "$work/tanh_mlp.mdl" -o "$work/after"
sides=after
if [ -n "${ACTS:-}" ]; then
    sides=
    for act in $ACTS; do
        mlp "$act" > "$work/$act.mdl"
        "$MDLC" "$work/$act.mdl" -o "$work/$act"
        sides="$sides $act"
    done
elif [ -n "${MDLC_BEFORE:-}" ]; then
    "$MDLC_BEFORE" "$work/tanh_mlp.mdl" -o "$work/before"
    sides="before after"
fi
sh tests/e2e/idx_head.sh "$D/train-images-idx3-ubyte.gz" "$n" "$work/img.idx"
sh tests/e2e/idx_head.sh "$D/train-labels-idx1-ubyte.gz" "$n" "$work/lab.idx"

# The same model in PyTorch: "samples_per_s X"
cat > "$work/peer.py" <<'EOF'
import gzip, struct, sys, time
import numpy as np
import torch
torch.set_num_threads(1)
def idx(path):
    data = open(path, "rb").read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)
x = torch.from_numpy(idx(sys.argv[1]).reshape(-1, 784).astype(np.float32) / 255)
y = torch.from_numpy(idx(sys.argv[2]).astype(np.int64))
model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.Tanh(), torch.nn.Linear(512, 512), torch.nn.Tanh(),
                            torch.nn.Linear(512, 512), torch.nn.Tanh(), torch.nn.Linear(512, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
order = torch.randperm(len(x))
t0 = time.perf_counter()
for i in range(0, len(x), 64):
    b = order[i:i + 64]
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x[b]), y[b]).backward()
    opt.step()
print("samples_per_s", len(x) / (time.perf_counter() - t0))
EOF

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
has_torch=0
[ -z "${ACTS:-}" ] && "$PY" -c 'import torch' 2> /dev/null && has_torch=1
i=0
while [ "$i" -lt "$repeat" ]; do
    for side in $sides; do
        "$work/$side" train --data "$work/img.idx,$work/lab.idx" --threads 1 --log "$work/$side.csv" --quiet
        awk -F, -v n="$n" 'END { print n / $NF }' "$work/$side.csv" >> "$work/$side.runs"
    done
    if [ "$has_torch" = 1 ]; then
        "$PY" "$work/peer.py" "$work/img.idx" "$work/lab.idx" | awk '{ print $2 }' >> "$work/torch.runs"
    fi
    i=$((i + 1))
done
echo "MLP 784-512-512-512-10, $n images, 1 thread: samples/s (median of $repeat)"
first=
for side in $sides; do
    m=$(median < "$work/$side.runs")
    [ -z "$first" ] && first=$m
    printf '  mdl %-8s %10.0f  %5.2fx\n' "$side" "$m" "$(echo "$m / $first" | bc -l)"
done
if [ "$has_torch" = 1 ]; then
    printf '  %-12s %10.0f\n' pytorch "$(median < "$work/torch.runs")"
fi
