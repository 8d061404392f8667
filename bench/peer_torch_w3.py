"""W3 in PyTorch (CPU): the char LSTM of /work/shared/bench/WORKLOADS.md.

    python3 peer_torch_w3.py CORPUS [SEED]

CORPUS is examples/make_corpus.sh's output (1,000,000 bytes, 96 distinct
characters).  Embedding(96, 64) -> LSTM(64, 128) -> Linear(128, 96),
softmax cross-entropy, Adam 1e-3, one epoch of truncated BPTT: the corpus
cut into 32 contiguous streams, each step the next 64 characters of every
stream, the LSTM state carried from step to step but detached (no
gradient across the cut), as mdl's runtime does with a .txt file.

Prints the training speed in chars/s (steps 11 on: the first 10 are
warm-up), the mean loss of each 40-step run over steps 11-210, the epoch's
mean loss, and the sampling speed: 1000 characters at batch 1, temperature
1.0, one LSTM step per character.  Threads: $TORCH_THREADS if set, else
torch's default (1 on Debian's build).
"""
import os
import sys
import time

import numpy as np
import torch

B, T, V, E, H = 32, 64, 96, 64, 128
WARMUP = 10

if os.environ.get("TORCH_THREADS"):
    torch.set_num_threads(int(os.environ["TORCH_THREADS"]))


class CharLSTM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(V, E)
        self.lstm = torch.nn.LSTM(E, H, batch_first=True)
        self.head = torch.nn.Linear(H, V)

    def forward(self, x, state):
        y, state = self.lstm(self.embed(x), state)
        return self.head(y), state


def streams(path):
    """The ids of the corpus as B rows of L, and the vocabulary."""
    data = np.fromfile(path, dtype=np.uint8)
    vocab = np.unique(data)
    assert len(vocab) <= V, f"{path}: {len(vocab)} distinct characters"
    ids = np.searchsorted(vocab, data).astype(np.int64)
    length = len(ids) // B
    return torch.from_numpy(ids[:B * length].reshape(B, length)), vocab


def train_epoch(model, rows):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = (rows.shape[1] - 1) // T
    state = (torch.zeros(1, B, H), torch.zeros(1, B, H))
    losses = []
    for s in range(steps):
        if s == WARMUP:
            start = time.perf_counter()
        x = rows[:, s * T:s * T + T]
        y = rows[:, s * T + 1:s * T + T + 1]
        state = tuple(t.detach() for t in state)
        logits, state = model(x, state)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - start
    return losses, (steps - WARMUP) * B * T / seconds


@torch.no_grad()
def sample(model, vocab, n, generator):
    """n characters after a newline, one LSTM step each; chars/s."""
    x = torch.tensor([[int(np.searchsorted(vocab, ord("\n")))]])
    state = (torch.zeros(1, 1, H), torch.zeros(1, 1, H))
    out = []
    start = time.perf_counter()
    for _ in range(n):
        logits, state = model(x, state)
        probs = torch.softmax(logits[0, -1] / 1.0, dim=0)
        x = torch.multinomial(probs, 1, generator=generator).view(1, 1)
        out.append(int(x))
    seconds = time.perf_counter() - start
    return bytes(vocab[out]).decode("ascii", "replace"), n / seconds


def main():
    path = sys.argv[1]
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    torch.manual_seed(seed)
    rows, vocab = streams(path)
    model = CharLSTM()
    losses, chars_per_s = train_epoch(model, rows)
    print(f"w3 threads {torch.get_num_threads()} train_chars_per_s {chars_per_s:.0f}")
    runs = [np.mean(losses[i:i + 40]) for i in range(WARMUP, WARMUP + 200, 40)]
    print("w3 loss steps 11-210 by 40:", " ".join(f"{x:.3f}" for x in runs))
    print(f"w3 epoch1_mean_loss {np.mean(losses):.3f} over {len(losses)} steps")
    text, sample_per_s = sample(model, vocab, 1000, torch.Generator().manual_seed(seed))
    print(f"w3 sample_chars_per_s {sample_per_s:.0f}")
    print(text[:200])


if __name__ == "__main__":
    main()
