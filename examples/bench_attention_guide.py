"""What does the guided-attention loss cost a Translator training step? Same batches, guide off vs on.

    python examples/bench_attention_guide.py [--batches 12] [--threads 2]

Runs forward + backward + AdamW on the committed Translator over the same packed phase-2 batches
of the token cache (data/translator_cache.pt), with `align_loss.weight` 0 (the guide is skipped)
and 1 (`nodes/attention_guide.py`: every span of the batch in one gathered attention per layer),
alternating twice, and prints seconds per step and the ratio.
"""
from __future__ import annotations

import argparse
import time

import torch
from bench_modes import run_main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", default="data/translator_cache.pt")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from omegaconf import OmegaConf

    from dragoman.nodes.translator import Translator, TranslatorDataConfig
    from dragoman.nodes.translator_data import packed_loader

    node = Translator.default().train()
    # The recipe's phase-2 rows (nodes/conf/translator.yaml), speech pairs only.
    cfg = OmegaConf.structured(TranslatorDataConfig(cache=args.cache, phase=2, rows_per_batch=2, tasks_per_pair=2))
    batches = [b for _, b in zip(range(args.batches), packed_loader(cfg, node.tokenizer, train=True))]
    opt = torch.optim.AdamW(node.parameters(), lr=1e-6)
    seconds = {0.0: [], 1.0: []}
    for weight in (0.0, 1.0, 0.0, 1.0):  # alternate, so drift of the machine hits both
        node.cfg.align_loss.weight = weight
        start = time.perf_counter()
        for batch in batches:
            loss, _, align = node._loss(batch)
            if align is not None:
                loss = loss + weight * align
            opt.zero_grad()
            loss.backward()
            opt.step()
        seconds[weight].append((time.perf_counter() - start) / len(batches))
    off, on = min(seconds[0.0]), min(seconds[1.0])
    print(f"{len(batches)} packed batches, {args.threads} threads: guide off {off:.3f} s/step, on {on:.3f} s/step; "
          f"the guide costs {on / off:.2f}x")


if __name__ == "__main__":
    run_main(main)
