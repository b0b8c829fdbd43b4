"""Benchmark: the default model in performance mode vs quality mode, on the same inputs, one run.

    python examples/bench_modes.py [--manifest data/corpus/test.jsonl] [--limit 20] [--to en] [--threads 2]
    python examples/bench_modes.py --json

Quality mode writes the source transcript, then the translation, then the speech tokens
(DESIGN §5); performance mode skips the transcript, so it writes fewer tokens per segment and
should be faster at about the same translation. Each mode runs its library graph
(`graphs/quality.yaml`, `graphs/performance.yaml`) over the same utterances of the source language
(the opposite of --to), sampling with the graphs' own seed. Without a manifest the example
file is used.

Prints, per mode: wall time and real-time factor (wall / source seconds), and performance's
speed-up over quality. BLEU of both modes on the same lines
is `dragoman eval` on `dragoman translate --manifest` output (README, "Translation results").
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent / "audio"


def sources(manifest: str | None, source_lang: str, limit: int) -> list[str]:
    if not manifest:
        return [str(EXAMPLES / f"{source_lang}_example.wav")]
    from dragoman.nodes.manifest import read_manifest

    rows = [r for r in read_manifest(manifest) if r.get("lang") == source_lang]
    if not rows or limit < 1:
        raise SystemExit(f"{manifest}: no {source_lang} utterances to run (limit {limit})")
    return [r["audio_filepath"] for r in rows[:limit]]


def run_main(main) -> None:
    """Run a benchmark's main; a dragoman error (missing checkpoint, bad audio) is one line."""
    from dragoman.nodes.errors import DragomanError

    try:
        main()
    except DragomanError as err:
        raise SystemExit(f"error: {err}") from None


def run_mode(mode: str, target_lang: str, files: list[str]) -> dict:
    from dragoman.graphs.runtime import Graph

    graph = Graph.load(mode, overrides=[f"target_lang={target_lang}"]).setup()
    graph.run({"audio_path": files[:1]})  # warm-up: allocator, first-call initialisation
    wall = source_s = 0.0
    for path in files:
        start = time.perf_counter()
        result = graph.run({"audio_path": [path]})
        wall += time.perf_counter() - start
        source_s += float(result["duration"][0])
    return {"mode": mode, "utterances": len(files), "wall_s": round(wall, 3), "source_s": round(source_s, 3),
            "rtf": round(wall / source_s, 4) if source_s else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", default=None, help="JSONL manifest (default: the example file)")
    parser.add_argument("--limit", type=int, default=20, help="utterances of the source language")
    parser.add_argument("--to", default="en", choices=["en", "zh"], help="target language")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    files = sources(args.manifest, {"en": "zh", "zh": "en"}[args.to], args.limit)
    quality = run_mode("quality", args.to, files)
    performance = run_mode("performance", args.to, files)
    report = {"device": "cpu", "threads": args.threads, "target_lang": args.to, "quality": quality,
              "performance": performance, "speedup": round(quality["wall_s"] / performance["wall_s"], 3)}
    if args.json:
        print(json.dumps(report))
        return
    for r in (quality, performance):
        print(f"{r['mode']:12s} {r['utterances']:3d} utt  {r['source_s']:7.2f} s of speech  wall {r['wall_s']:7.2f} s  rtf {r['rtf']}")
    print(f"performance is {report['speedup']:.2f}x faster than quality on the same inputs")


if __name__ == "__main__":
    run_main(main)
