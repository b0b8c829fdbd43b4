"""How much does a trained Translator listen to its source? A teacher-forced check per task.

    python examples/translator_source_reliance.py [--checkpoint runs/translator_phase3.nemo]
                                                  [--split dev] [--pairs 40] [--json]

For each task of DESIGN §5 (asr, s2tt, tts, mt, quality, performance, direct) and each pair of the
split, the target is scored twice with teacher forcing: after its own prompt, and after the
prompt of a different pair. A model that translates loses much more on the swapped prompt; a
model that has only learned the target language (fluent output unrelated to the input) loses
about the same. The gap (swapped minus own, nats per target token) is the number to watch while
training: generation quality cannot be better than what this shows.
"""
from __future__ import annotations

import argparse
import json
import statistics

import torch
from bench_modes import run_main

TASKS = ("asr", "s2tt", "mt", "tts", "quality", "performance", "direct")


def target_loss(node, ids: list[int], n_prompt: int) -> float:
    from dragoman.nodes.translator_data import collate_rows, pack

    batch = collate_rows(pack([(ids, n_prompt)], len(ids), 0), 0)
    with torch.no_grad():
        loss = node._loss(batch)[0]
    return float(loss)


def reliance(node, cache: dict, split: str, pairs: int) -> dict[str, dict[str, float]]:
    from dragoman.nodes.translator_data import build_sequence, pairs_of

    all_pairs = pairs_of(cache["splits"][split])[: 2 * pairs]
    if len(all_pairs) < 4:
        raise SystemExit(f"split {split!r} has too few complete pairs")
    out = {}
    for task in TASKS:
        own, swapped = [], []
        for i, (src, tgt) in enumerate(all_pairs):
            other_src, other_tgt = all_pairs[(i + 2) % len(all_pairs)]  # +2: same direction, other pair
            ids, n, _ = build_sequence(task, src, tgt, node.tokenizer, cache["mean_rate"])
            other, m, _ = build_sequence(task, other_src, other_tgt, node.tokenizer, cache["mean_rate"])
            own.append(target_loss(node, ids, n))
            swapped.append(target_loss(node, other[:m] + ids[n:], m))
        out[task] = {"own": round(statistics.mean(own), 4), "swapped": round(statistics.mean(swapped), 4),
                     "gap": round(statistics.mean(swapped) - statistics.mean(own), 4)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="translator .nemo (default: the committed one)")
    parser.add_argument("--cache", default="data/translator_cache.pt", help="token cache (train_translator.py stage=cache)")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--pairs", type=int, default=40, help="pairs per task (both directions each)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from dragoman.nodes.translator import Translator
    from dragoman.nodes.translator_data import load_cache

    node = Translator.load(args.checkpoint)
    node.eval()
    result = reliance(node, load_cache(args.cache), args.split, args.pairs)
    if args.json:
        print(json.dumps({"checkpoint": args.checkpoint or "default", "split": args.split, "tasks": result}))
        return
    print(f"{'task':12s} {'own prompt':>11s} {'swapped':>9s} {'gap':>7s}   (nats per target token)")
    for task, r in result.items():
        print(f"{task:12s} {r['own']:11.3f} {r['swapped']:9.3f} {r['gap']:7.3f}")


if __name__ == "__main__":
    run_main(main)
