"""The recommender of examples/recommender.mdl in PyTorch (CPU), for speed.

    python3 peer_torch_rec.py TRAIN_DATA [EPOCHS]

TRAIN_DATA is examples/make_ratings's ratings.train.data (tab separated
user, item, rating, timestamp).  The same model: 16 factors and a bias per
user and item (nn.Embedding), a learnt global mean, score = mu + bu + bi +
p . q, loss MSE + 0.07 mean(|p|^2 + |q|^2) over the batch's rows, Adam
5e-3, batch 256, shuffled each epoch; the raw ids numbered in order of
first appearance, as mdl's runtime does.  Prints the training speed in
samples/s over epochs 2 on (the first is warm-up), and the mean training
loss of the last epoch.  Threads: $TORCH_THREADS if set, else torch's
default.
"""
import os
import sys
import time

import numpy as np
import torch

USERS, ITEMS, K, BATCH, LR, LAM = 1000, 1700, 16, 256, 5e-3, 0.07

if os.environ.get("TORCH_THREADS"):
    torch.set_num_threads(int(os.environ["TORCH_THREADS"]))


class MF(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.P = torch.nn.Embedding(USERS, K)
        self.Q = torch.nn.Embedding(ITEMS, K)
        self.bu = torch.nn.Embedding(USERS, 1)
        self.bi = torch.nn.Embedding(ITEMS, 1)
        self.mu = torch.nn.Parameter(torch.tensor(3.5))
        for e in (self.P, self.Q):
            torch.nn.init.normal_(e.weight, 0, 0.1)
        for e in (self.bu, self.bi):
            torch.nn.init.zeros_(e.weight)

    def forward(self, u, i):
        p, q = self.P(u), self.Q(i)
        score = self.mu + self.bu(u).squeeze(1) + self.bi(i).squeeze(1) + (p * q).sum(1)
        return score, p, q


def dense(column):
    """Raw ids to 0..n-1 in order of first appearance."""
    _, first, inverse = np.unique(column, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return torch.from_numpy(rank[inverse])


def main():
    data = np.loadtxt(sys.argv[1], dtype=np.int64, delimiter="\t")
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    users, items = dense(data[:, 0]), dense(data[:, 1])
    ratings = torch.from_numpy(data[:, 2].astype(np.float32))
    n = len(ratings)
    torch.manual_seed(0)
    model = MF()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    start = None
    for epoch in range(epochs):
        if epoch == 1:
            start = time.perf_counter()
        order = torch.randperm(n)
        total = 0.0
        for at in range(0, n, BATCH):
            idx = order[at:at + BATCH]
            u, i, r = users[idx], items[idx], ratings[idx]
            score, p, q = model(u, i)
            loss = ((score - r) ** 2).mean() + LAM * ((p * p).sum(1) + (q * q).sum(1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
    seconds = time.perf_counter() - start
    print(f"rec torch train_samples_per_s {n * (epochs - 1) / seconds:.0f} last_epoch_loss {total / n:.4f}")


if __name__ == "__main__":
    main()
