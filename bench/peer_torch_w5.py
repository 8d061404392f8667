"""W5 in PyTorch (CPU): the char GPT of /work/shared/bench/WORKLOADS.md.

    python3 peer_torch_w5.py CORPUS [SEED]

CORPUS is examples/make_corpus.sh's output (96 distinct characters).
Token and position embeddings (N(0, 1), as nn.Embedding), two pre-LayerNorm
blocks (d 128, 4 heads, causal self-attention with one qkv projection, an
MLP of 512 with the exact GELU), a final LayerNorm and a head 128 -> 96:
429,664 parameters, nn.Linear's and nn.LayerNorm's default initialisation,
as examples/tiny_gpt.mdl.  Softmax cross-entropy over every position, Adam
1e-3, one epoch of n / (32 * 64) steps, each on 32 windows of 65
characters from random places of the corpus.

Prints the training speed in tokens/s (steps 6 on: the first 5 are
warm-up), the mean loss of each 40-step run over steps 6-205, the epoch's
mean loss, and the sampling speed: 1000 tokens at batch 1, temperature 1.0,
each a forward pass over the last (at most 64) tokens, as a PyTorch user
without a KV cache writes it.  Threads: $TORCH_THREADS if set, else torch's
default.
"""
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

B, T, V, C, HEADS, HIDDEN = 32, 64, 96, 128, 4, 512
WARMUP = 5

if os.environ.get("TORCH_THREADS"):
    torch.set_num_threads(int(os.environ["TORCH_THREADS"]))


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = torch.nn.LayerNorm(C)
        self.qkv = torch.nn.Linear(C, 3 * C)
        self.out = torch.nn.Linear(C, C)
        self.ln2 = torch.nn.LayerNorm(C)
        self.fc = torch.nn.Linear(C, HIDDEN)
        self.proj = torch.nn.Linear(HIDDEN, C)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (z.view(b, t, HEADS, C // HEADS).transpose(1, 2) for z in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(C // HEADS)
        mask = torch.ones(t, t, dtype=torch.bool).tril()
        att = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1) @ v
        x = x + self.out(att.transpose(1, 2).reshape(b, t, C))
        return x + self.proj(F.gelu(self.fc(self.ln2(x))))


class TinyGPT(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = torch.nn.Embedding(V, C)
        self.pos = torch.nn.Embedding(T, C)
        self.blocks = torch.nn.Sequential(Block(), Block())
        self.ln = torch.nn.LayerNorm(C)
        self.head = torch.nn.Linear(C, V)

    def forward(self, x):
        t = x.shape[1]
        h = self.tok(x) + self.pos(torch.arange(t))
        return self.head(self.ln(self.blocks(h)))


def corpus(path):
    data = np.fromfile(path, dtype=np.uint8)
    vocab = np.unique(data)
    assert len(vocab) <= V, f"{path}: {len(vocab)} distinct characters"
    return torch.from_numpy(np.searchsorted(vocab, data).astype(np.int64)), vocab


def train_epoch(model, ids, generator):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = max(1, len(ids) // (B * T))
    losses = []
    for s in range(steps):
        if s == WARMUP:
            start = time.perf_counter()
        at = torch.randint(0, len(ids) - T - 1, (B,), generator=generator)
        x = torch.stack([ids[i:i + T] for i in at])
        y = torch.stack([ids[i + 1:i + T + 1] for i in at])
        loss = F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - start
    return losses, (steps - WARMUP) * B * T / seconds


@torch.no_grad()
def sample(model, vocab, n, generator):
    """n tokens after a newline, each a forward pass over the last T."""
    ctx = [int(np.searchsorted(vocab, ord("\n")))]
    start = time.perf_counter()
    for _ in range(n):
        logits = model(torch.tensor([ctx[-T:]]))
        probs = torch.softmax(logits[0, -1] / 1.0, dim=0)
        ctx.append(int(torch.multinomial(probs, 1, generator=generator)))
    seconds = time.perf_counter() - start
    return bytes(vocab[ctx[1:]]).decode("ascii", "replace"), n / seconds


def main():
    path = sys.argv[1]
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    torch.manual_seed(seed)
    ids, vocab = corpus(path)
    model = TinyGPT()
    params = sum(p.numel() for p in model.parameters())
    losses, tokens_per_s = train_epoch(model, ids, torch.Generator().manual_seed(seed))
    print(f"w5 threads {torch.get_num_threads()} params {params} train_tokens_per_s {tokens_per_s:.0f}")
    runs = [np.mean(losses[i:i + 40]) for i in range(WARMUP, WARMUP + 200, 40)]
    print("w5 loss steps 6-205 by 40:", " ".join(f"{x:.3f}" for x in runs))
    print(f"w5 epoch1_mean_loss {np.mean(losses):.3f} over {len(losses)} steps")
    text, sample_per_s = sample(model, vocab, 1000, torch.Generator().manual_seed(seed))
    print(f"w5 sample_tokens_per_s {sample_per_s:.0f}")
    print(text[:200])


if __name__ == "__main__":
    main()
