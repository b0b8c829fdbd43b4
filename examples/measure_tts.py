"""Does the Translator's speech say its text? Its TTS task alone, against the original recordings.

    python examples/measure_tts.py [--manifest data/corpus/test.jsonl] [--lang en] [--limit 20] [--greedy]
                                   [--translator X.nemo] [--decoder Y.nemo] [--repetition-penalty 1.1] [--json]

For each utterance of `--lang`: the default speaker and emotion tokenizers read the recording,
the Translator's TTS task turns the TRUE text into semantic tokens (task_prompter -> translator
-> cot_parser), the default Decoder speaks them, and the ContentTokenizer's recogniser (with
its LM) reads both the recording and the synthesis. Both CERs are computed against the same
text, so the gap is what the TTS step loses. In S2ST this is the step after the translation,
which is why Speech-BLEU stays low even where Text-BLEU is not (README "Translation results").
"""
from __future__ import annotations

import argparse
import json

from bench_modes import run_main


def measure(manifest: str, lang: str, limit: int, greedy: bool, translator_path: str | None = None,
            repetition_penalty: float = 1.1, decoder_path: str | None = None) -> dict:
    import torch

    from dragoman.nodes.audio.io import read_audio
    from dragoman.nodes.content_tokenizer import ContentTokenizer
    from dragoman.nodes.controller import CoTParser, TaskPrompter
    from dragoman.nodes.decoder import Decoder
    from dragoman.nodes.emotion_tokenizer import EmotionTokenizer
    from dragoman.nodes.errors import DragomanError
    from dragoman.nodes.manifest import read_manifest
    from dragoman.nodes.speaker_encoder import SpeakerEncoder
    from dragoman.nodes.text_units import cer, normalize_text
    from dragoman.nodes.translator import Translator

    rows = [r for r in read_manifest(manifest) if r.get("lang") == lang][:limit]
    if not rows:
        raise DragomanError(f"{manifest}: no lines with lang={lang}")
    speaker, emotion, content = SpeakerEncoder.default().eval(), EmotionTokenizer.default().eval(), ContentTokenizer.default().eval()
    translator = Translator.load(translator_path).eval()
    decoder = Decoder.load(decoder_path).eval()
    prompter = TaskPrompter({"task": "tts", "target_lang": lang, "sampling": {"do_sample": not greedy, "repetition_penalty": repetition_penalty}})
    parser = CoTParser({"mode": "direct"})
    refs, heard, spoken = [], [], []
    with torch.no_grad():
        for row in rows:
            wav = read_audio(row["audio_filepath"])
            spk = speaker.run(audio=[wav])["speaker_tokens"]
            emo = emotion.run(audio=[wav])["emotion_tokens"]
            request = prompter.run(text=[row["text"]], speaker_tokens=spk, emotion_tokens=emo)["request"]
            parsed = parser.run(result=translator.run(request=request)["result"], speaker_tokens=spk)
            audio = decoder.run(semantic_tokens=parsed["semantic_tokens"], speaker_tokens=spk, emotion_tokens=emo)["audio"][0]
            refs.append(normalize_text(row["text"], lang))
            heard.append(normalize_text(content.transcribe([wav], lang=lang)[0], lang))
            spoken.append(normalize_text(content.transcribe([audio.float()], lang=lang)[0], lang))
    return {"manifest": manifest, "lang": lang, "n": len(rows), "greedy": greedy, "repetition_penalty": repetition_penalty,
            "cer_recording": cer(heard, refs), "cer_tts": cer(spoken, refs),
            "examples": [{"text": r, "recording": h, "tts": s} for r, h, s in list(zip(refs, heard, spoken))[:3]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", default="data/corpus/test.jsonl")
    parser.add_argument("--lang", default="en", choices=["en", "zh"])
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--greedy", action="store_true", help="greedy decoding instead of the default sampling")
    parser.add_argument("--translator", help="a translator .nemo (default: the committed checkpoint)")
    parser.add_argument("--decoder", help="a decoder .nemo that reads the translator's semantic codes (default: the committed one)")
    parser.add_argument("--repetition-penalty", type=float, default=1.1, help="1.0 turns it off (default 1.1, UniSS's)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.manifest, args.lang, args.limit, args.greedy, args.translator, args.repetition_penalty, args.decoder)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return
    print(f"{result['n']} {args.lang} utterances of {args.manifest}: recogniser CER on the recordings "
          f"{result['cer_recording']:.3f}, on the Translator's TTS of the same text {result['cer_tts']:.3f}")
    for ex in result["examples"]:
        print(f"  text {ex['text']!r}\n    recording -> {ex['recording']!r}\n    tts       -> {ex['tts']!r}")


if __name__ == "__main__":
    run_main(main)
