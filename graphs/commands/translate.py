"""`dragoman translate`: run a graph on audio files (or a corpus manifest) and write speech.

Any graph with an `audio_path` input and an `audio` output works; `--to`, `--mode` and `--speed`
set the graph params `target_lang`, `mode` and `speed` (a graph that lacks one refuses it rather
than ignoring it). Text outputs (`transcript`, `translation`) are printed when the graph has them.

`--manifest M --source-lang zh --to en --out-dir D` translates every `zh` line of a corpus
manifest and appends one line per utterance to `D/run.jsonl` — the format `dragoman eval` reads
(dragoman.nodes.eval.run_manifest), with `reference_text` from the pair's other side. A line is
appended only once its wav is written, so a re-run skips finished utterances; bad files are
reported in `D/errors.jsonl` and the run goes on. `--devices N` (and `--num-nodes M` under
torchrun or SLURM) splits the manifest between processes (dragoman.graphs.distributed_translate).
"""
from __future__ import annotations

import json
import sys

DEFAULT_GRAPH = "quality"
_PARAM_FLAGS = {"to": "target_lang", "mode": "mode", "speed": "speed", "weights": "weights"}


def register(sub) -> None:
    p = sub.add_parser("translate", help="translate speech files with a graph (default: quality)")
    p.add_argument("inputs", nargs="*", metavar="IN", help="audio file(s): wav, flac, ogg, mp3, any rate/channels")
    p.add_argument("-o", "--output", help="output wav (one input)")
    p.add_argument("--out-dir", help="output folder (one wav per input; run.jsonl with --manifest)")
    p.add_argument("--manifest", help="corpus manifest (JSONL) to translate instead of IN files")
    p.add_argument("--source-lang", choices=["en", "zh"], help="with --manifest: which lines to translate")
    p.add_argument("--graph", default=DEFAULT_GRAPH, help="library graph name or YAML file (default: %(default)s)")
    p.add_argument("--to", choices=["en", "zh"], help="target language")
    p.add_argument("--mode", choices=["quality", "performance", "direct"], help="chain-of-thought mode")
    p.add_argument("--speed", type=float, help="speaking speed 0.1-3.5 (1.0 = the source's pace)")
    p.add_argument("--weights", metavar="DIR", help="released UniSS directory (graph param `weights`, e.g. --graph uniss_release)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a graph param or node field, e.g. nodes.decoder.restore_from=x.nemo")
    p.add_argument("--trust-graph", action="store_true", help="allow `_target_` classes outside registered nodes")
    p.add_argument("--device", default=None, help="torch device for the nodes (default: cpu)")
    p.add_argument("--limit", type=int, help="with --manifest: translate at most N lines")
    p.add_argument("--devices", type=int, default=1, metavar="N",
                   help="with --manifest: N processes on this machine, one shard each (--device: cpu or cuda)")
    p.add_argument("--num-nodes", type=int, default=1, metavar="M",
                   help="with --manifest: machines taking part (under torchrun or SLURM srun)")
    p.add_argument("--strategy", choices=["ddp", "ddp_spawn"], default="ddp",
                   help="how Lightning starts the processes: ddp re-runs this command per device or joins "
                        "torchrun/srun (default); ddp_spawn starts them from this process")
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


def load_graph(args):
    from dragoman.graphs.runtime import Graph
    from dragoman.graphs.spec import load_spec
    from dragoman.nodes.errors import DragomanError

    params = load_spec(args.graph).params
    graph = Graph.load(args.graph, overrides=_overrides(args, params), trust=args.trust_graph)
    if "audio_path" not in graph.spec.inputs or "audio" not in graph.spec.outputs:
        raise DragomanError(f"graph '{args.graph}' needs an `audio_path` input and an `audio` output to translate files")
    return graph


def _join(texts, lang: str | None) -> str | None:
    if texts is None:
        return None
    parts = [t for t in texts if t]
    return ("" if lang == "zh" else " ").join(parts)


def translate_one(graph, source: str, target, target_lang: str | None = None) -> dict:
    """Run `graph` on one file, write the output wav, return the report."""
    import time

    from dragoman.nodes.audio.io import SAMPLE_RATE, write_audio

    timings: dict[str, float] = {}
    started = time.perf_counter()
    result = graph.run({"audio_path": [source]}, timings=timings)
    wav = result["audio"][0]
    write_audio(target, wav, SAMPLE_RATE)
    wall = time.perf_counter() - started
    src_s = float(result["duration"][0]) if "duration" in result else None
    source_lang = {"en": "zh", "zh": "en"}.get(target_lang) if target_lang else None
    return {
        "input": str(source),
        "output": str(target),
        "graph": graph.spec.name,
        "transcript": _join(result.get("transcript"), source_lang),
        "translation": _join(result.get("translation"), target_lang),
        "source_duration_s": src_s,
        "output_duration_s": round(wav.shape[-1] / SAMPLE_RATE, 3),
        "wall_s": round(wall, 3),
        "rtf": round(wall / src_s, 4) if src_s else None,
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
    }


def _files(args, graph) -> int:
    from pathlib import Path

    from dragoman.nodes.errors import DragomanError

    if not args.inputs:
        raise DragomanError("give input audio files or --manifest")
    if args.output and len(args.inputs) > 1:
        raise DragomanError("-o names one file: use --out-dir for several inputs")
    if not (args.output or args.out_dir):
        raise DragomanError("say where the output goes: -o OUT.wav or --out-dir DIR")
    targets = [Path(args.output) if args.output else Path(args.out_dir) / f"{Path(s).stem}.out.wav" for s in args.inputs]
    target_lang = graph.spec.params.get("target_lang")
    failures = 0
    for source, target in zip(args.inputs, targets):
        try:
            report = translate_one(graph, source, target, target_lang)
        except DragomanError as err:
            if len(args.inputs) == 1:
                raise
            failures += 1  # a batch reports its bad files and finishes the rest
            print(f"dragoman: error: {err}", file=sys.stderr)
            continue
        if args.json:
            print(json.dumps(report, ensure_ascii=False))
        else:
            for key in ("transcript", "translation"):
                if report[key]:
                    print(f"{key}: {report[key]}")
            print(f"wrote {target} ({report['output_duration_s']:.2f} s of audio, rtf {report['rtf']})")
    return 2 if failures else 0


def _manifest(args, graph) -> int:
    from dragoman.graphs.batch import translate_manifest
    from dragoman.nodes.errors import DragomanError

    if not args.out_dir or not args.source_lang or not args.to:
        raise DragomanError("--manifest needs --out-dir, --source-lang and --to")
    summary = translate_manifest(graph, args.manifest, args.source_lang, args.to, args.out_dir, limit=args.limit)
    print(json.dumps(summary) if args.json else
          f"translated {summary['done']} new, {summary['skipped']} already done, {summary['failed']} failed -> {summary['run']}")
    return 2 if summary["failed"] else 0


def run(args) -> int:
    if args.devices * args.num_nodes > 1:
        from dragoman.graphs.distributed_translate import translate_on_devices
        from dragoman.nodes.errors import DragomanError

        if not args.manifest:
            raise DragomanError("--devices/--num-nodes split a --manifest between processes; give --manifest")
        return translate_on_devices(args)
    graph = load_graph(args)
    graph.setup(device=args.device)
    return _manifest(args, graph) if args.manifest else _files(args, graph)
