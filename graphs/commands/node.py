"""`dragoman node eval NODE --manifest M [--checkpoint C] [--json]`: measure one node on a manifest.
`dragoman node lm content_tokenizer --manifest M [--checkpoint C] -o OUT.nemo`: add character
n-gram language models to the ContentTokenizer's recogniser (`dragoman.nodes.ctc_lm`).

Each node name maps to one function in `EVALUATORS` (args -> dict of metrics); adding a node's
evaluation is adding one entry. Metrics and their definitions: `dragoman.nodes.node_eval`.
"""
from __future__ import annotations

import json
import math


def _speaker_encoder(args) -> dict:
    from dragoman.nodes.node_eval import evaluate_speaker_encoder

    return evaluate_speaker_encoder(args.manifest, args.checkpoint, args.limit, args.batch_size)


def _content_tokenizer(args) -> dict:
    from dragoman.nodes.node_eval import evaluate_content_tokenizer

    return evaluate_content_tokenizer(args.manifest, args.checkpoint, args.limit, args.batch_size)


def _emotion_tokenizer(args) -> dict:
    from dragoman.nodes.node_eval import evaluate_emotion_tokenizer

    return evaluate_emotion_tokenizer(args.manifest, args.checkpoint, args.limit, args.batch_size)


def _codec(args) -> dict:
    from dragoman.nodes.codec_eval import evaluate_codec

    return evaluate_codec(args.manifest, args.checkpoint, args.limit, args.batch_size,
                          semantic_checkpoint=args.semantic_checkpoint)


# node name -> evaluation (args: manifest, checkpoint or None for the default, limit, batch_size)
EVALUATORS = {
    "speaker_encoder": _speaker_encoder,
    "content_tokenizer": _content_tokenizer,
    "emotion_tokenizer": _emotion_tokenizer,
    "codec": _codec,  # semantic tokenizer + decoder resynthesis; --checkpoint: a decoder .nemo
}


def register(sub) -> None:
    p = sub.add_parser("node", help="work with one node: evaluate it on a manifest")
    actions = p.add_subparsers(dest="node_action", metavar="ACTION")
    p.set_defaults(handler=lambda args: (p.print_help(), 0)[1])
    ev = actions.add_parser("eval", help="measure a trained node on a manifest (EER, CER, accuracy, probes)")
    ev.add_argument("node", choices=sorted(EVALUATORS), help="which node")
    ev.add_argument("--manifest", required=True, help="NeMo-style JSONL manifest of 16 kHz utterances")
    ev.add_argument("--checkpoint", help=".nemo to evaluate (default: the node's committed checkpoint)")
    ev.add_argument("--semantic-checkpoint", help="codec only: the semantic tokenizer .nemo the decoder was trained on "
                    "(default: the committed one)")
    ev.add_argument("--limit", type=int, help="only the first N utterances")
    ev.add_argument("--batch-size", type=int, default=16)
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.set_defaults(handler=run_eval)
    lm = actions.add_parser("lm", help="fit the recogniser's character n-gram LMs on transcripts; write a new .nemo")
    lm.add_argument("node", choices=["content_tokenizer"], help="which node")
    lm.add_argument("--manifest", required=True, help="JSONL with `text` and `lang` (the training manifest, not dev/test)")
    lm.add_argument("--checkpoint", help=".nemo to add the LMs to (default: the node's committed checkpoint)")
    lm.add_argument("-o", "--output", required=True, help=".nemo to write (weights unchanged, LMs in its config)")
    for lang in ("zh", "en"):
        lm.add_argument(f"--order-{lang}", type=int, help=f"n-gram order of the {lang} LM (default: the config's)")
        lm.add_argument(f"--weight-{lang}", type=float, help=f"fusion weight of the {lang} LM (default: the config's)")
        lm.add_argument(f"--bonus-{lang}", type=float, help=f"length bonus with the {lang} LM (default: the config's)")
    lm.set_defaults(handler=run_lm)


def _finite(value):
    """JSON has no NaN: report an undefined metric as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def run_eval(args) -> int:
    result = _finite(EVALUATORS[args.node](args))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {round(value, 4) if isinstance(value, float) else value}")
    return 0


def run_lm(args) -> int:
    from pathlib import Path

    from dragoman.nodes.content_tokenizer import ContentTokenizer
    from dragoman.nodes.manifest import read_manifest

    node = ContentTokenizer.load(args.checkpoint)
    for lang in ("zh", "en"):
        for flag, key in (("order", "order"), ("weight", "weight"), ("bonus", "length_bonus")):
            value = getattr(args, f"{flag}_{lang}")
            if value is not None:
                node.cfg.decoding[lang][key] = value
    sizes = node.set_recognizer_lm(read_manifest(args.manifest))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    node.save_to(args.output)
    dec = node.cfg.decoding
    for lang, n in sizes.items():
        lm = dec[lang]
        print(f"{lang}: {lm.order}-gram LM, {n} n-grams, weight {lm.weight}, length bonus {lm.length_bonus}")
    print(f"saved {args.output} (beam {dec.beam})")
    return 0
