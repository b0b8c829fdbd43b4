"""Does `--speed` change how long the translation is? Measured on the same inputs, one run.

    python examples/measure_speed_control.py [--manifest data/corpus/test.jsonl] [--limit 20] [--to en]
                                             [--speeds 0.7 1.0 1.5] [--graph performance] [--json]

The prompter turns the requested speed into a speed token (DESIGN §5: 1.0 = the source's own
pace relative to the corpus mean, larger = faster). The translator was trained with the token
of each target's measured pace, so a larger speed should give shorter speech. For every speed
this runs the graph on the same utterances and reports the mean ratio of output to source
duration; the last column is each speed's mean duration relative to speed 1.0. The output's
duration is where its sound ends: the Stitcher pads a translation shorter than its source with
silence up to the source's length (UniSS's rule), which would hide any speed-up.
"""
from __future__ import annotations

import argparse
import json
import statistics

from bench_modes import run_main, sources


def sounding_samples(wav) -> int:
    """Samples up to the last one above -60 dB of the peak (the Stitcher's padding is exact zeros)."""
    import torch

    loud = torch.nonzero(wav.abs() > 1e-3 * wav.abs().max().clamp_min(1e-8))
    return int(loud[-1]) + 1 if len(loud) else 0


def durations(graph_name: str, target_lang: str, speed: float, files: list[str]) -> list[float]:
    from dragoman.graphs.runtime import Graph
    from dragoman.nodes.audio.io import SAMPLE_RATE

    graph = Graph.load(graph_name, overrides=[f"target_lang={target_lang}", f"speed={speed}"]).setup()
    ratios = []
    for path in files:
        result = graph.run({"audio_path": [path]})
        ratios.append(sounding_samples(result["audio"][0]) / SAMPLE_RATE / float(result["duration"][0]))
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", default=None, help="JSONL manifest (default: the example file)")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--to", default="en", choices=["en", "zh"])
    parser.add_argument("--speeds", type=float, nargs="+", default=[0.7, 1.0, 1.5])
    parser.add_argument("--graph", default="performance", help="library graph with a `speed` param")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if 1.0 not in args.speeds:
        args.speeds.append(1.0)

    files = sources(args.manifest, {"en": "zh", "zh": "en"}[args.to], args.limit)
    per_speed = {s: durations(args.graph, args.to, s, files) for s in args.speeds}
    base = statistics.mean(per_speed[1.0])
    rows = [{"speed": s, "mean_output_over_source": round(statistics.mean(r), 3),
             "relative_to_speed_1": round(statistics.mean(r) / base, 3)} for s, r in sorted(per_speed.items())]
    if args.json:
        print(json.dumps({"graph": args.graph, "target_lang": args.to, "utterances": len(files), "speeds": rows}))
        return
    print(f"{args.graph}, {len(files)} utterances -> {args.to}")
    for r in rows:
        print(f"speed {r['speed']:4.2f}: output/source duration {r['mean_output_over_source']:.3f}, "
              f"{r['relative_to_speed_1']:.3f} x the duration at speed 1.0")


if __name__ == "__main__":
    run_main(main)
