"""Decode step of the default translator: the whole output layer against its writable rows only.

The default vocabulary has 21,120 ids, of which the model may write 662 (text, control,
semantic, speed and end tokens; `Translator.writable_ids`). The decode loop used to compute all
21,120 logits per step and mask the rest; now `StaticQwen2(output_ids=...)` computes the 662.
This times both on the same prompt and positions, checks that they give the same logits on the
writable ids, and prints the ratio.

    python examples/bench_output_rows.py [--steps 300] [--threads 1] [--checkpoint PATH]
"""
from __future__ import annotations

import argparse
import time

import torch


def time_steps(static, steps: int, prompt: torch.Tensor) -> tuple[float, torch.Tensor]:
    """Seconds per step over `steps` single-token steps after `prompt`, and the last logits."""
    static.allocate(1, prompt.shape[1] + steps + 8)
    static.prefill(prompt)
    token = prompt[:, -1]
    for i in range(10):  # warm-up
        static.step(token, torch.tensor([prompt.shape[1] + i]))
    start = time.perf_counter()
    for i in range(steps):
        logits = static.step(token, torch.tensor([prompt.shape[1] + i]))
    return (time.perf_counter() - start) / steps, logits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoint", default="default")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from dragoman.kernels.qwen2_forward import StaticQwen2
    from dragoman.nodes.translator import Translator

    node = Translator.default() if args.checkpoint == "default" else Translator.restore_from(args.checkpoint)
    rows = node.writable_ids()
    prompt = torch.randint(0, int(node.lm.config.vocab_size), (1, 300), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        full_s, full = time_steps(StaticQwen2(node.lm), args.steps, prompt)
        rows_s, part = time_steps(StaticQwen2(node.lm, output_ids=rows), args.steps, prompt)
    err = float((full[:, rows] - part).abs().max())
    print(f"output rows: {node.lm.config.vocab_size} (full) vs {len(rows)} (writable); max |logit difference| {err:.2e}")
    print(f"step: full {full_s * 1e3:.2f} ms, writable rows {rows_s * 1e3:.2f} ms, speed-up {full_s / rows_s:.2f}x")


if __name__ == "__main__":
    main()
