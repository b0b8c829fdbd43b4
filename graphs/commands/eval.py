"""`dragoman eval`: score a translation run with the UniSS paper's metrics.

    dragoman eval --manifest D/run.jsonl [--json] [-o REPORT_DIR] [--asr-transcripts FILE]
                  [--recognizer NAME[:ARG]] [--judge resemblyzer|mfcc-stats]
                  [--emotion-classifier emotion-tokenizer:PATH.nemo]

The manifest format is documented in `dragoman.nodes.eval.run_manifest`. `--json` prints one
JSON object (keys: `dragoman.nodes.eval.scoring.SUMMARY_KEYS`) and nothing else on stdout;
skipped lines are reported on stderr either way.
"""
from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser("eval", help="score a translate run: BLEU, SLC, speaker/emotion/prosody transfer, RTF")
    p.add_argument("--manifest", required=True, metavar="RUN.jsonl",
                   help="run manifest written by `dragoman translate`")
    p.add_argument("--json", action="store_true", help="print one JSON object with every metric")
    p.add_argument("-o", "--out-dir", metavar="REPORT_DIR",
                   help="write report.md, per_utterance.csv, summary.json, plots")
    asr = p.add_mutually_exclusive_group()
    asr.add_argument("--asr-transcripts", metavar="FILE",
                     help="transcripts of the output audio for Speech-BLEU (JSONL {audio, text} or TSV path<TAB>text)")
    asr.add_argument("--recognizer", metavar="NAME[:ARG]",
                     help="registered recogniser for Speech-BLEU (default: content-tokenizer when its checkpoint exists; none: off)")
    p.add_argument("--judge", metavar="NAME", help="speaker-similarity judge (default: resemblyzer, else mfcc-stats)")
    p.add_argument("--emotion-classifier", metavar="NAME[:ARG]",
                   help="emotion classifier, e.g. emotion-tokenizer:x.nemo")
    p.add_argument("--examples", type=int, default=3, metavar="N", help="utterances drawn in the report (default: 3)")
    p.add_argument("--batch-size", type=int, default=16, help="utterances per judge/recogniser batch (default: 16)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from dragoman.nodes.errors import DragomanError
    from dragoman.nodes.eval.report import render_text, write_report
    from dragoman.nodes.eval.scoring import EvalOptions, evaluate

    if args.batch_size < 1 or args.examples < 0:
        raise DragomanError("--batch-size must be >= 1 and --examples >= 0")
    opts = EvalOptions(
        asr_transcripts=args.asr_transcripts,
        recognizer=args.recognizer,
        judge=args.judge,
        emotion_classifier=args.emotion_classifier,
        batch_size=args.batch_size,
        progress=sys.stderr.isatty(),
    )
    result = evaluate(args.manifest, opts)
    for skip in result.skipped:
        print(f"dragoman: warning: {args.manifest}:{skip.line}: skipped ({skip.reason})", file=sys.stderr)
    report = write_report(result, args.out_dir, args.examples) if args.out_dir else None
    if args.json:
        print(json.dumps(result.summary, ensure_ascii=False, allow_nan=False))
    else:
        print(render_text(result.summary))
        if report is not None:
            print(f"report: {report}")
    return 0
