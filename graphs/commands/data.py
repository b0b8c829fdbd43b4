"""`dragoman data`: build, import and inspect UniST-style parallel speech corpora (DESIGN §7).

    dragoman data build --out DIR --pairs N [--seed S] [--jobs J] [--split train=0.8,dev=0.05,...]
                        [--speakers s01,...] [--unseen-speakers s11,s12] [--emotions neutral,...]
                        [--recognizer NAME[:ARG] --max-error 0.2] [--json]
    dragoman data import pairs FILE.tsv|FILE.jsonl --out DIR [same casting/split options] [--json]
    dragoman data import covost COVOST.tsv --audio-dir CLIPS --src-lang zh --out DIR
                        [--cvss-tsv CVSS.tsv --cvss-audio-dir DIR] [--split train] [--json]
    dragoman data stats MANIFEST -o DIR [--max-f0 N] [--json]
    dragoman data text --out FILE.jsonl --pairs N [--seed S] [--exclude DEV.jsonl TEST.jsonl ...]
                       [--format manifest|pairs] [--json]

`build` writes DIR/{train,dev,test,test_unseen_speakers}.jsonl, the wavs under DIR/wavs and
DIR/build_report.json; `text` writes grammar sentence pairs without audio (LM and MT data that
avoids the held-out combinations and every sentence of the --exclude manifests); re-running it with the same arguments reuses every finished wav. Input
formats of `import` are documented in `dragoman.nodes.data.importers`.
"""
from __future__ import annotations

import json
import os
import sys


def _names(text):
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _add_casting(p) -> None:
    p.add_argument("--seed", type=int, default=0, help="seed of sentences, casting and jitter (default: 0)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="rendering processes (default: all cores)")
    p.add_argument("--split", dest="proportions", metavar="NAME=SHARE,...",
                   help="split proportions (default train=0.8,dev=0.05,test=0.1,test_unseen_speakers=0.05)")
    p.add_argument("--speakers", metavar="S01,...", help="speakers to use (default: all twelve)")
    p.add_argument("--unseen-speakers", default="s11,s12", metavar="S11,...",
                   help="speakers kept for test_unseen_speakers only (default: s11,s12)")
    p.add_argument("--emotions", metavar="NAME,...", help="emotions to use (default: neutral,happy,sad,angry)")
    p.add_argument("--json", action="store_true", help="print one JSON object (the build report)")


def register(sub) -> None:
    data = sub.add_parser("data", help="build, import and inspect parallel zh/en speech corpora")
    verbs = data.add_subparsers(dest="data_command", metavar="VERB")

    p = verbs.add_parser("build", help="render the grammar corpus (zh/en pairs, shared speaker and emotion)")
    p.add_argument("--out", required=True, metavar="DIR", help="corpus folder (created; re-runs resume)")
    p.add_argument("--pairs", type=int, required=True, metavar="N", help="pairs to keep over all splits")
    _add_casting(p)
    p.add_argument("--recognizer", metavar="NAME[:ARG]", help="re-recognition filter (registered recogniser)")
    p.add_argument("--max-error", type=float, default=0.2, help="WER (en) / CER (zh) limit of that filter")
    p.set_defaults(handler=build)

    imp = verbs.add_parser("import", help="import text pairs (rendered) or a CoVoST/CVSS corpus (converted)")
    kinds = imp.add_subparsers(dest="import_kind", metavar="KIND")
    p = kinds.add_parser("pairs", help="zh/en text pairs from TSV or JSONL, rendered like `build`")
    p.add_argument("file", metavar="FILE", help="TSV (zh<TAB>en[...]) or JSONL ({\"zh\":..., \"en\":...})")
    p.add_argument("--out", required=True, metavar="DIR")
    _add_casting(p)
    p.set_defaults(handler=import_pairs)
    p = kinds.add_parser("covost", help="CoVoST 2 TSV with source clips, optionally CVSS target speech")
    p.add_argument("tsv", metavar="COVOST.tsv")
    p.add_argument("--audio-dir", required=True, help="folder of the source clips named in the TSV's path column")
    p.add_argument("--src-lang", required=True, help="source language: zh (zh-CN) or en")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--cvss-tsv", help="CVSS TSV (path<TAB>translation) of the target speech")
    p.add_argument("--cvss-audio-dir", help="folder of the CVSS target wavs (<path>.wav)")
    p.add_argument("--split", default="train", help="split of rows without a split column (default: train)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=import_covost)

    p = verbs.add_parser("text", help="grammar text pairs without audio (recogniser LM and translator MT data)")
    p.add_argument("--out", required=True, metavar="FILE.jsonl", help="text manifest to write (two rows per pair)")
    p.add_argument("--pairs", type=int, required=True, metavar="N")
    p.add_argument("--seed", type=int, default=1, help="grammar seed (default 1; the rendered corpus used 0)")
    p.add_argument("--exclude", nargs="*", default=[], metavar="MANIFEST",
                   help="manifests whose sentences must not appear (the corpus's dev and test splits)")
    p.add_argument("--format", default="manifest", choices=["manifest", "pairs"],
                   help="manifest: two rows per pair (LM/MT data); pairs: {zh, en} rows for `data import pairs`")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=text_pairs)

    p = verbs.add_parser("stats", help="summary and plots of a manifest (durations, F0 per emotion/speaker, ratios)")
    p.add_argument("manifest", metavar="MANIFEST")
    p.add_argument("-o", "--out-dir", required=True, metavar="DIR", help="writes summary.json and PNG plots")
    p.add_argument("--max-f0", type=int, default=400, metavar="N", help="utterances measured for prosody (default 400)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=stats)
    data.set_defaults(handler=lambda args: data.print_help() or 0)
    imp.set_defaults(handler=lambda args: imp.print_help() or 0)


def _proportions(text):
    from dragoman.nodes.errors import DragomanError

    if not text:
        return None
    out = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise DragomanError(f"--split: expected NAME=SHARE, got {item!r}") from None
    return out


def _print_report(report: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
        return
    for name, s in report.get("splits", {}).items():
        print(f"{name:22s} {s['pairs']:6d} pairs {s['hours']:7.3f} h  hq {s['hq_share']:.0%}  "
              f"{len(s['speakers'])} speakers, {len(s['emotions'])} emotions")
    if "malformed_lines" in report:
        print(f"malformed lines skipped: {report['malformed_lines']}")
        for example in report.get("malformed_examples", [])[:5]:
            print(f"  {example}")
    if "dropped" in report:
        print("dropped pairs: " + ", ".join(f"{k} {v}" for k, v in report["dropped"].items()))
        print(f"rendered {report['rendered_utterances']} utterances (reused {report['reused_utterances']}) in "
              f"{report['seconds']:.1f} s: {report['rendered_per_second']:.1f} utterances/s")
    for error in report.get("errors", [])[:5]:
        print(f"dragoman: warning: {error}", file=sys.stderr)


def build(args) -> int:
    from dragoman.nodes.data.build import build_corpus
    from dragoman.nodes.data.filters import RecognitionFilter

    recognition = None
    if args.recognizer:
        from dragoman.nodes.eval.recognizers import RECOGNIZERS

        recognition = RecognitionFilter(RECOGNIZERS.create(args.recognizer), args.max_error)
    report = build_corpus(args.out, args.pairs, seed=args.seed, jobs=args.jobs,
                          proportions=_proportions(args.proportions), speakers=_names(args.speakers),
                          unseen_speakers=_names(args.unseen_speakers) or [], emotions=_names(args.emotions),
                          recognition=recognition, progress=sys.stderr.isatty())
    _print_report(report, args.json)
    return 0


def text_pairs(args) -> int:
    from dragoman.nodes.data.text_pairs import write_text_pairs

    report = write_text_pairs(args.out, args.pairs, args.seed, args.exclude, args.format)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(f"wrote {report['out']}: {report['pairs']} pairs ({report['asked']} asked), "
              f"{report['excluded_sentences']} excluded sentences from {len(args.exclude)} manifests")
    return 0


def import_pairs(args) -> int:
    from dragoman.nodes.data.importers import import_text_pairs

    report = import_text_pairs(args.file, args.out, seed=args.seed, jobs=args.jobs,
                               proportions=_proportions(args.proportions), speakers=_names(args.speakers),
                               unseen_speakers=_names(args.unseen_speakers) or [], emotions=_names(args.emotions),
                               progress=sys.stderr.isatty())
    _print_report(report, args.json)
    return 0


def import_covost(args) -> int:
    from dragoman.nodes.data.importers import import_covost as run_import

    report = run_import(args.tsv, args.audio_dir, args.out, args.src_lang, cvss_tsv=args.cvss_tsv,
                        cvss_audio_dir=args.cvss_audio_dir, split=args.split, progress=sys.stderr.isatty())
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(f"{report['pairs']} pairs, {report['source_only']} source-only lines; skipped: "
              f"{report['bad_audio']} bad audio, {report['no_target']} without target, "
              f"{report['duration_ratio']} by duration ratio, {report['malformed_lines']} malformed lines")
        for example in report["malformed_examples"][:5] + report["audio_problems"][:5]:
            print(f"  {example}")
    return 0


def stats(args) -> int:
    from dragoman.nodes.data.stats import corpus_stats

    summary = corpus_stats(args.manifest, args.out_dir, max_f0=args.max_f0, progress=sys.stderr.isatty())
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
        return 0
    print(f"{summary['utterances']} utterances, {summary['pairs']} pairs, {summary['hours']:.3f} h "
          f"({', '.join(f'{k} {v:.3f} h' for k, v in summary['hours_per_lang'].items())}), hq {summary['hq_share']:.0%}")
    for key in ("emotion", "speaker"):
        for name, m in summary[f"prosody_per_{key}"].items():
            print(f"  {key} {name:10s} F0 {m['f0_mean']:6.1f} Hz  spread {m['f0_spread']:5.1f}  "
                  f"{m['rms_db']:6.1f} dB  {m['seconds_per_unit']:.3f} s/unit  (n={m['utterances']})")
    print("plots: " + ", ".join(summary["plots"]))
    return 0
