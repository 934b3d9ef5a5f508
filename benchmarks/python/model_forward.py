#!/usr/bin/env python3
"""PyTorch twin of Bittensor.Models.Nucleus.ServerModel, timed like the `model-forward` harness.

Same architecture and default sizes as hocon/bittensor.conf (vocab 50378, d_model 128, 2 layers, 2 heads,
feed-forward 256, max_sequence 256, network_dim 1024), same threads (2), inference mode, batch 16 x seq 64.
Run with Debian's PyTorch:  apt-get install -y python3-torch && /usr/bin/python3 benchmarks/python/model_forward.py
"""
import argparse
import statistics
import time

import torch
from torch import nn


class ServerModel(nn.Module):
    def __init__(self, vocab=50378, d_model=128, layers=2, heads=2, feed_forward=256, max_sequence=256, network_dim=1024, dropout=0.1):
        super().__init__()
        self.tokens = nn.Embedding(vocab, d_model)
        self.positions = nn.Embedding(max_sequence, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, feed_forward, dropout)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.mapping = nn.Linear(d_model, network_dim)

    def forward(self, tokens):
        positions = torch.arange(tokens.shape[1], dtype=torch.int64)
        x = self.tokens(tokens) + self.positions(positions).unsqueeze(0)
        seq = tokens.shape[1]
        mask = torch.triu(torch.full((seq, seq), float("-inf")), diagonal=1)  # causal, as ServerModel.cs
        h = self.encoder(x.transpose(0, 1), mask=mask).transpose(0, 1)
        return self.mapping(h)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ServerModel().eval()
    tokens = torch.randint(0, 50257, (args.batch, args.seq), dtype=torch.int64)
    times = []
    with torch.inference_mode():
        for i in range(args.iters + 5):
            start = time.perf_counter()
            y = model(tokens)
            float(y[0, 0, 0])
            if i >= 5:
                times.append((time.perf_counter() - start) * 1000)
    median = statistics.median(times)
    print(f"pytorch {torch.__version__} model-forward: batch {args.batch} seq {args.seq} d_model 128 layers 2 threads {torch.get_num_threads()}: "
          f"median {median:.2f} ms, mean {statistics.mean(times):.2f} ms, {args.batch * 1000 / median:.1f} samples/s")


if __name__ == "__main__":
    main()
