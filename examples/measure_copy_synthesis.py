"""How much does the Decoder's waveform stage cost, before any network predicts anything?

Copy synthesis: each recording is analysed into exactly what the default Decoder predicts (the
log-mel envelope, YIN F0 and voicing on 100 Hz frames, `codec_features`) and rendered again by
the weightless `HarmonicNoiseSynth`. The ContentTokenizer's recogniser and the EmotionTokenizer
then read the recordings and the copies. Whatever the copies lose, no decoder network trained on
these targets can win back, so this is the ceiling of `dragoman node eval codec` for a given
analysis window. Two windows run side by side on the same lines, and the CER ratio is printed.

    python examples/measure_copy_synthesis.py [--manifest data/corpus/test.jsonl] [--limit 60]
                                              [--windows 320 640] [--no-silence-gate] [--json]
"""
from __future__ import annotations

import argparse
import json

from bench_modes import run_main


def copies(wavs, win_length: int, silence_level: float | None) -> list:
    """Each waveform through analysis and resynthesis with a `win_length`-sample window."""
    from dragoman.nodes.modules.codec_features import EnvelopeMel, decoder_targets
    from dragoman.nodes.modules.harmonic_synth import HarmonicNoiseSynth

    mel = EnvelopeMel(80, win_length=win_length)
    synth = HarmonicNoiseSynth(80, win_length=win_length, silence_level=silence_level)
    out = []
    for wav in wavs:
        log_mel, log_f0, voiced = decoder_targets(wav, mel)
        out.append(synth(log_mel, log_f0, voiced.float()).clamp(-1, 1)[: wav.shape[0]])
    return out


def measure(manifest: str, limit: int, windows: list[int], silence_level: float | None) -> dict:
    import torch

    from dragoman.nodes.codec_eval import _cer_by_language
    from dragoman.nodes.content_tokenizer import ContentTokenizer
    from dragoman.nodes.emotion_tokenizer import EmotionTokenizer
    from dragoman.nodes.node_eval import load_audio, load_rows

    rows = load_rows(manifest, limit=limit, need=("text", "lang"))
    wavs = load_audio(rows)
    recognizer, emotion = ContentTokenizer.default().eval(), EmotionTokenizer.default().eval()
    with torch.inference_mode():
        cer, per_lang = _cer_by_language(recognizer, rows, wavs, 8)
        labels = emotion.run(audio=wavs)["emotion"]
        result = {"manifest": manifest, "n": len(rows), "recordings": {"cer": cer, "cer_by_lang": per_lang}}
        for win in windows:
            synthesised = copies(wavs, win, silence_level)
            c, by_lang = _cer_by_language(recognizer, rows, synthesised, 8)
            agree = sum(a == b for a, b in zip(labels, emotion.run(audio=synthesised)["emotion"])) / len(rows)
            result[f"win_{win}"] = {"cer": c, "cer_by_lang": by_lang, "cer_ratio": c / max(cer, 1e-9),
                                    "emotion_agreement": agree}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", default="data/corpus/test.jsonl")
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--windows", type=int, nargs="+", default=[320, 640], help="analysis windows in samples")
    parser.add_argument("--no-silence-gate", action="store_true",
                        help="render digital silence as hiss (HarmonicNoiseSynth silence_level=None)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from dragoman.nodes.modules.harmonic_synth import SILENCE_LEVEL

    result = measure(args.manifest, args.limit, args.windows, None if args.no_silence_gate else SILENCE_LEVEL)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['n']} lines of {args.manifest}; recordings: CER {result['recordings']['cer']:.3f}")
    print("| window | CER | en | zh | CER ratio | emotion agreement |")
    print("| --- | --- | --- | --- | --- | --- |")
    for win in args.windows:
        r = result[f"win_{win}"]
        print(f"| {win} ({win / 16:.0f} ms) | {r['cer']:.3f} | {r['cer_by_lang'].get('en', float('nan')):.3f} | "
              f"{r['cer_by_lang'].get('zh', float('nan')):.3f} | {r['cer_ratio']:.2f} | {r['emotion_agreement']:.2f} |")
    if len(args.windows) == 2:
        a, b = (result[f"win_{w}"]["cer"] for w in args.windows)
        print(f"CER {args.windows[1]} / {args.windows[0]}: {b / max(a, 1e-9):.2f}x")


if __name__ == "__main__":
    run_main(main)
