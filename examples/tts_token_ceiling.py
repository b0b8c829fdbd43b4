"""How good must the Translator's semantic tokens be? Recogniser CER of decoded token sequences.

    python examples/tts_token_ceiling.py [--lang en] [--limit 20] [--checkpoint X.nemo] [--json]

For `--limit` test utterances of the token cache (data/translator_cache.pt), the default Decoder
speaks, with the utterance's own speaker and emotion tokens:
- `true`: the recording's semantic tokens (the codec's ceiling);
- `teacher_forced`: the Translator's argmax for each token of its TTS task given the TRUE
  history (one step ahead, never its own output);
- `random_30` / `random_60`: the true tokens with 30 % / 60 % replaced by random codes;
and the ContentTokenizer's recogniser reads each. If `teacher_forced` is intelligible while the
free-running TTS of `measure_tts.py` is not, the model knows what to say one step at a time and
fails on its own history (exposure bias), which is what scheduled sampling addresses.
"""
from __future__ import annotations

import argparse
import json
import random

import torch
from bench_modes import run_main


def ceiling(lang: str, limit: int, checkpoint: str | None, cache_path: str, decoder_path: str | None = None) -> dict:
    from dragoman.nodes import uniss_tokens as U
    from dragoman.nodes.content_tokenizer import ContentTokenizer
    from dragoman.nodes.decoder import Decoder
    from dragoman.nodes.text_units import cer, normalize_text
    from dragoman.nodes.translator import Translator
    from dragoman.nodes.translator_data import build_sequence, load_cache

    cache = load_cache(cache_path)
    records = [r for r in cache["splits"]["test"] if r["lang"] == lang][:limit]
    if not records:
        raise SystemExit(f"{cache_path}: no {lang} utterances in the test split")
    node = Translator.load(checkpoint).eval()
    decoder = Decoder.load(decoder_path).eval()
    recogniser = ContentTokenizer.default().eval()
    codes = cache["token_counts"]["num_semantic"]
    semantic_ids = node.tokenizer.convert_tokens_to_ids([U.semantic_token(i) for i in range(codes)])
    rng = random.Random(0)
    variants: dict[str, list[list[int]]] = {"true": [], "teacher_forced": [], "random_30": [], "random_60": []}
    hits = total = 0
    with torch.no_grad():
        for r in records:
            seq = build_sequence("tts", r, r, node.tokenizer, cache["mean_rate"])
            _, _, s0, s1 = seq.align
            logits = node.lm(torch.tensor([seq.ids])).logits[0, s0 - 1:s1 - 1][:, semantic_ids]
            true, predicted = list(r["semantic_tokens"]), logits.argmax(-1).tolist()
            hits += sum(p == t for p, t in zip(predicted, true))
            total += len(true)
            variants["true"].append(true)
            variants["teacher_forced"].append(predicted)
            for share, name in ((0.3, "random_30"), (0.6, "random_60")):
                variants[name].append([rng.randrange(codes) if rng.random() < share else t for t in true])
        refs = [normalize_text(r["text"], lang) for r in records]
        out = {"lang": lang, "n": len(records), "teacher_forced_token_accuracy": round(hits / total, 3)}
        for name, sequences in variants.items():
            wavs = [decoder.run(semantic_tokens=[s], speaker_tokens=[r["speaker_tokens"]],
                                emotion_tokens=[r.get("emotion_tokens") or None])["audio"][0].float()
                    for s, r in zip(sequences, records)]
            heard = [normalize_text(h, lang) for h in recogniser.transcribe(wavs, lang=lang)]
            out[f"cer_{name}"] = round(cer(heard, refs), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", default="en", choices=["en", "zh"])
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--checkpoint", default=None, help="translator .nemo (default: the committed one)")
    parser.add_argument("--cache", default="data/translator_cache.pt")
    parser.add_argument("--decoder", default=None, help="decoder .nemo for the cache's semantic codes (default: the committed one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = ceiling(args.lang, args.limit, args.checkpoint, args.cache, args.decoder)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['n']} {args.lang} test utterances; teacher-forced token accuracy {result['teacher_forced_token_accuracy']:.3f}")
    for name in ("true", "teacher_forced", "random_30", "random_60"):
        print(f"  recogniser CER, {name:>14} tokens: {result['cer_' + name]:.3f}")


if __name__ == "__main__":
    run_main(main)
