"""`dragoman translate`: run a graph on audio files and write the output speech.

Any graph with an `audio_path` input and an `audio` output works; `--to`, `--mode` and `--speed`
set the graph params `target_lang`, `mode` and `speed` (a graph that lacks one refuses it rather
than ignoring it). Text outputs (`transcript`, `translation`) are printed when the graph has them.
"""
from __future__ import annotations

import json
import sys

DEFAULT_GRAPH = "quality"
_PARAM_FLAGS = {"to": "target_lang", "mode": "mode", "speed": "speed"}


def register(sub) -> None:
    p = sub.add_parser("translate", help="translate speech files with a graph (default: quality)")
    p.add_argument("inputs", nargs="+", metavar="IN", help="audio file(s): wav, flac, ogg, mp3, any rate/channels")
    p.add_argument("-o", "--output", help="output wav (one input)")
    p.add_argument("--out-dir", help="output folder (one wav per input, named after it)")
    p.add_argument("--graph", default=DEFAULT_GRAPH, help="library graph name or YAML file (default: %(default)s)")
    p.add_argument("--to", choices=["en", "zh"], help="target language")
    p.add_argument("--mode", choices=["quality", "performance", "direct"], help="chain-of-thought mode")
    p.add_argument("--speed", type=float, help="speaking speed 0.1-3.5 (1.0 = source pace)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a graph param or node field, e.g. nodes.decoder.restore_from=x.nemo")
    p.add_argument("--trust-graph", action="store_true", help="allow `_target_` classes outside registered nodes")
    p.add_argument("--device", default=None, help="torch device for the nodes (default: cpu)")
    p.add_argument("--json", action="store_true", help="print one JSON object per input")
    p.set_defaults(handler=run)


def _overrides(args, graph_params: dict) -> list[str]:
    from dragoman.nodes.errors import DragomanError

    overrides = []
    for flag, param in _PARAM_FLAGS.items():
        value = getattr(args, flag)
        if value is None:
            continue
        if param not in graph_params:
            raise DragomanError(f"graph '{args.graph}' has no param '{param}' (set by --{flag})")
        if flag == "speed" and not 0.1 <= value <= 3.5:
            raise DragomanError(f"--speed {value}: must lie in [0.1, 3.5]")
        overrides.append(f"{param}={value}")
    return overrides + list(args.sets)


def _output_path(args, source: str):
    from pathlib import Path

    from dragoman.nodes.errors import DragomanError

    if args.output:
        if len(args.inputs) > 1:
            raise DragomanError("-o names one file: use --out-dir for several inputs")
        return Path(args.output)
    if args.out_dir:
        return Path(args.out_dir) / f"{Path(source).stem}.out.wav"
    raise DragomanError("say where the output goes: -o OUT.wav or --out-dir DIR")


def run(args) -> int:
    import time

    from dragoman.graphs.runtime import Graph
    from dragoman.graphs.spec import load_spec
    from dragoman.nodes.audio.io import SAMPLE_RATE, write_audio
    from dragoman.nodes.errors import DragomanError

    params = load_spec(args.graph).params
    graph = Graph.load(args.graph, overrides=_overrides(args, params), trust=args.trust_graph)
    if "audio_path" not in graph.spec.inputs or "audio" not in graph.spec.outputs:
        raise DragomanError(f"graph '{args.graph}' needs an `audio_path` input and an `audio` output to translate files")
    outputs = [_output_path(args, src) for src in args.inputs]  # fail before any work
    graph.setup(device=args.device)
    failures = 0
    for source, target in zip(args.inputs, outputs):
        timings: dict[str, float] = {}
        started = time.perf_counter()
        try:
            result = graph.run({"audio_path": [source]}, timings=timings)
            wav = result["audio"][0]
            write_audio(target, wav, SAMPLE_RATE)
        except DragomanError as err:
            if len(args.inputs) == 1:
                raise
            failures += 1  # keep going: a batch reports its bad files and finishes the rest
            print(f"dragoman: error: {err}", file=sys.stderr)
            continue
        wall = time.perf_counter() - started
        out_s = wav.shape[-1] / SAMPLE_RATE
        src_s = float(result["duration"][0]) if "duration" in result else None
        report = {
            "input": source,
            "output": str(target),
            "graph": graph.spec.name,
            "transcript": result.get("transcript", [None])[0],
            "translation": result.get("translation", [None])[0],
            "source_duration_s": src_s,
            "output_duration_s": round(out_s, 3),
            "wall_s": round(wall, 3),
            "rtf": round(wall / src_s, 4) if src_s else None,
            "timings_s": {k: round(v, 4) for k, v in timings.items()},
        }
        if args.json:
            print(json.dumps(report, ensure_ascii=False))
        else:
            for key in ("transcript", "translation"):
                if report[key] is not None:
                    print(f"{key}: {report[key]}")
            print(f"wrote {target} ({out_s:.2f} s of audio, rtf {report['rtf']})")
    return 2 if failures else 0
