"""The peer side of bench/train.sh: the same workloads in PyTorch (CPU).

    python3 peer_torch.py w1 HOUSE_CSV           -> "w1 us_per_step X final_mse Y"
    python3 peer_torch.py w2 IMAGES LABELS N     -> "w2 samples_per_s X"
    python3 peer_torch.py w2acc DATA_DIR SEED EPOCHS -> test accuracy per epoch
    python3 peer_torch.py w4 IMAGES LABELS N     -> "w4 samples_per_s X"
    python3 peer_torch.py infer w2|w4 [SECONDS]  -> "w2 latency_us_b1 P50 p99 P99 samples_per_s_b256 X"

W1: full-batch linear regression, SGD lr 0.03, 1000 steps.  W2: the
784-256-128-10 ReLU MLP, softmax cross-entropy, Adam 1e-3, batch 64, one
epoch over the first N images.  W4: examples/fashion_cnn.mdl's CNN, the
same recipe.  infer: the W2 or W4 model's forward pass under
torch.inference_mode() on random inputs, as `./model bench` times
predict: batch 1 (median and 99th percentile of per-call times) and batch
256 (samples/s from the mean), each after a fifth of SECONDS (default 1)
of warm-up.  Threads: $TORCH_THREADS if set, else torch's default (1 on
Debian's build).
"""
import gzip
import struct
import sys
import time

import os

import numpy as np
import torch

if os.environ.get("TORCH_THREADS"):
    torch.set_num_threads(int(os.environ["TORCH_THREADS"]))


def idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def w2_model():
    """The 784-256-128-10 ReLU MLP of examples/fashion_mlp.mdl."""
    return torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10))


def w4_model():
    """The CNN of examples/fashion_cnn.mdl."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(800, 10))


def w1(csv):
    d = np.loadtxt(csv, delimiter=",", skiprows=1, dtype=np.float32)
    x, y = torch.from_numpy(d[:, :2].copy()), torch.from_numpy(d[:, 2].copy())
    w = torch.zeros(2, requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    opt = torch.optim.SGD([w, b], lr=0.03)
    t0 = time.perf_counter()
    for _ in range(1000):
        opt.zero_grad()
        loss = ((x @ w + b - y) ** 2).mean()
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t0
    with torch.no_grad():
        mse = float(((x @ w + b - y) ** 2).mean())
    print(f"w1 us_per_step {dt / 1000 * 1e6:.1f} final_mse {mse:.4g}")


def w2(images, labels, n, cnn=False):
    x = torch.from_numpy(idx(images)[:n].reshape(n, 784).astype(np.float32) / 255)
    y = torch.from_numpy(idx(labels)[:n].astype(np.int64))
    torch.manual_seed(0)
    if cnn:
        x = x.reshape(n, 1, 28, 28)
    model = w4_model() if cnn else w2_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    perm = torch.randperm(n)
    t0 = time.perf_counter()
    for i in range(0, n, 64):
        j = perm[i:i + 64]
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[j]), y[j])
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t0
    print(f"{'w4' if cnn else 'w2'} samples_per_s {n / dt:.0f}")


def w2_accuracy(d, seed, epochs):
    """Test accuracy after each epoch of the W2 recipe on the full data."""
    x = torch.from_numpy(idx(d + "/train-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255)
    y = torch.from_numpy(idx(d + "/train-labels-idx1-ubyte.gz").astype(np.int64))
    tx = torch.from_numpy(idx(d + "/t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255)
    ty = torch.from_numpy(idx(d + "/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    torch.manual_seed(seed)
    model = w2_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    accs = []
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            j = perm[i:i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[j]), y[j]).backward()
            opt.step()
        with torch.no_grad():
            accs.append(float((model(tx).argmax(1) == ty).float().mean()))
    print("w2acc seed", seed, " ".join(f"{a:.4f}" for a in accs))


def timed_calls(model, x, seconds):
    """Per-call seconds of model(x) for `seconds`, after seconds/5 of warm-up."""
    with torch.inference_mode():
        end = time.perf_counter() + seconds / 5
        while time.perf_counter() < end:
            model(x)
        times = []
        end = time.perf_counter() + seconds
        while len(times) < 10 or time.perf_counter() < end:
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return sorted(times)


def infer(workload, seconds):
    torch.manual_seed(0)
    model = (w4_model() if workload == "w4" else w2_model()).eval()
    shape = (1, 28, 28) if workload == "w4" else (784,)
    one = timed_calls(model, torch.randn(1, *shape), seconds)
    big = timed_calls(model, torch.randn(256, *shape), seconds)
    p50 = one[(len(one) + 1) // 2 - 1]
    p99 = one[max(0, -(-len(one) * 99 // 100) - 1)]
    rate = 256 / (sum(big) / len(big))
    print(f"{workload} latency_us_b1 {p50 * 1e6:.2f} p99 {p99 * 1e6:.2f} samples_per_s_b256 {rate:.0f}")


if __name__ == "__main__":
    if sys.argv[1] == "infer":
        infer(sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 1.0)
    elif sys.argv[1] == "w1":
        w1(sys.argv[2])
    elif sys.argv[1] == "w2acc":
        w2_accuracy(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        w2(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[1] == "w4")
