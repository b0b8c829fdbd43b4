"""Which of the Decoder's three predicted streams costs intelligibility and emotion?

The default Decoder predicts a log-mel envelope, F0 and voicing, and the weightless synthesiser
renders them. Here each recording is also analysed into the true streams (`codec_features`,
exactly the training targets), and every line is rendered five ways: all predicted (what `dragoman
node eval codec` hears), one stream swapped for the truth (envelope, F0, voicing), and all true
(copy synthesis, the ceiling). The recogniser's CER per language and the EmotionTokenizer's
agreement with its label of the recording say where the gap is: the stream whose swap closes most
of it is the one to work on. Session 9 found the English gap in the envelope (CER 0.029 all
predicted, 0.013 with the true envelope, 0.028 with true F0). With `--baseline` a second decoder
is measured on the same lines, and the all-predicted CER ratio printed.

    python examples/measure_stream_swaps.py [--checkpoint runs/x/decoder.nemo] [--baseline default]
                                            [--manifest data/corpus/test.jsonl] [--limit 100] [--json]
"""
from __future__ import annotations

import argparse
import json

from bench_modes import run_main

RENDERS = ("predicted", "true envelope", "true F0", "true voicing", "copy synthesis")


def renders(decoder, wav, semantic, speaker, emotion) -> dict:
    """The five renderings of one recording (`RENDERS`), each cut to the recording's length."""
    import torch

    from dragoman.nodes.modules.codec_features import EnvelopeMel, decoder_targets

    true_mel, true_f0, voiced = decoder_targets(wav, EnvelopeMel(decoder.n_mels, win_length=decoder.win_length))
    tokens, lengths, spk, emo = decoder._prepare([semantic], [speaker], [emotion])
    pred = decoder.net(tokens, lengths, spk, emo)
    frames = min(true_mel.shape[-1], int(pred.lengths[0]))
    mel, f0, voicing = pred.log_mel[0, :, :frames], pred.log_f0[0, :frames], torch.sigmoid(pred.voicing_logit[0, :frames])
    t_mel, t_f0, t_voicing = true_mel[:, :frames].float(), true_f0[:frames].float(), voiced[:frames].float()

    def synth(m, f, v):
        return decoder.synth(m, f, v).clamp(-1.0, 1.0)[: wav.shape[0]]

    return {"predicted": synth(mel, f0, voicing), "true envelope": synth(t_mel, f0, voicing),
            "true F0": synth(mel, t_f0, voicing), "true voicing": synth(mel, f0, t_voicing),
            "copy synthesis": synth(t_mel, t_f0, t_voicing)}


def measure(checkpoints: dict, manifest: str, limit: int) -> dict:
    import torch

    from dragoman.nodes.codec_eval import _cer_by_language
    from dragoman.nodes.content_tokenizer import ContentTokenizer
    from dragoman.nodes.decoder import Decoder
    from dragoman.nodes.emotion_tokenizer import EmotionTokenizer
    from dragoman.nodes.node_eval import load_audio, load_rows
    from dragoman.nodes.semantic_tokenizer import SemanticTokenizer
    from dragoman.nodes.speaker_encoder import SpeakerEncoder

    rows = load_rows(manifest, limit=limit, need=("text", "lang"))
    wavs = load_audio(rows)
    recognizer, judge = ContentTokenizer.default().eval(), EmotionTokenizer.default().eval()
    result = {"manifest": manifest, "n": len(rows)}
    with torch.inference_mode():
        semantic = SemanticTokenizer.default().eval().run(audio=wavs)["semantic_tokens"]
        speaker = SpeakerEncoder.default().eval().run(audio=wavs)["speaker_tokens"]
        emotion_tokens = judge.run(audio=wavs)["emotion_tokens"]
        labels = judge.run(audio=wavs)["emotion"]
        cer, by_lang = _cer_by_language(recognizer, rows, wavs, 8)
        result["recordings"] = {"cer": cer, "cer_by_lang": by_lang}
        for name, path in checkpoints.items():
            decoder = Decoder.load(None if path == "default" else path).eval()
            out = {r: [] for r in RENDERS}
            for i, wav in enumerate(wavs):
                for r, audio in renders(decoder, wav, semantic[i], speaker[i], emotion_tokens[i]).items():
                    out[r].append(audio)
            result[name] = {}
            for r, audio in out.items():
                c, per_lang = _cer_by_language(recognizer, rows, audio, 8)
                agree = sum(a == b for a, b in zip(labels, judge.run(audio=audio)["emotion"])) / len(rows)
                result[name][r] = {"cer": c, "cer_by_lang": per_lang, "emotion_agreement": agree}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default="default", help="Decoder .nemo (default: the committed one)")
    parser.add_argument("--baseline", default=None, help="a second Decoder .nemo (or 'default') measured on the same lines")
    parser.add_argument("--manifest", default="data/corpus/test.jsonl")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    checkpoints = {"decoder": args.checkpoint}
    if args.baseline:
        checkpoints["baseline"] = args.baseline
    result = measure(checkpoints, args.manifest, args.limit)
    if args.json:
        print(json.dumps(result))
        return
    rec = result["recordings"]
    print(f"{result['n']} lines of {args.manifest}; recordings: CER {rec['cer']:.3f} "
          + " ".join(f"{k} {v:.3f}" for k, v in rec["cer_by_lang"].items()))
    langs = sorted(rec["cer_by_lang"])
    print("| decoder | rendering | CER | " + " | ".join(langs) + " | emotion agreement |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in langs) + " | --- |")
    for name, path in checkpoints.items():
        for r in RENDERS:
            m = result[name][r]
            print(f"| {path} | {r} | {m['cer']:.3f} | " + " | ".join(f"{m['cer_by_lang'][k]:.3f}" for k in langs)
                  + f" | {m['emotion_agreement']:.2f} |")
    if args.baseline:
        a, b = result["decoder"]["predicted"]["cer"], result["baseline"]["predicted"]["cer"]
        print(f"all-predicted CER, {args.checkpoint} / {args.baseline}: {a / max(b, 1e-9):.2f}x")


if __name__ == "__main__":
    run_main(main)
