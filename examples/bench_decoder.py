"""Benchmark: decoding 10 s of speech with the default Decoder vs. two baselines, on this machine.

    python examples/bench_decoder.py [--seconds 10] [--repeats 3] [--threads 2]

The semantic and speaker tokens come from the committed SemanticTokenizer and SpeakerEncoder on
the example audio (tiled to the requested length). Compared, in one run and on the same tokens:

- `decoder` (default): MelDecoderNet + harmonic-plus-noise synthesis;
- `griffin-lim`: the same predicted envelope inverted with torchaudio's Griffin-Lim (32
  iterations, momentum 0.99), the usual vocoder-free alternative;
- `wave-decoder`: the BiCodec-style WaveDecoder at its default width (256 channels; untrained
  weights: its speed does not depend on them) and at UniSS's width (1536 channels) with --uniss.

Prints the best-of-N wall time per method, its real-time factor, and each baseline's time as a
multiple of the default decoder's.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

EXAMPLES = Path(__file__).resolve().parent / "audio"


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up: allocator, oneDNN primitives
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def source_audio(seconds: float) -> torch.Tensor:
    from dragoman.nodes.audio.io import read_audio

    clip = torch.cat([read_audio(EXAMPLES / "en_example.wav"), read_audio(EXAMPLES / "zh_example.wav")])
    n = int(seconds * 16000)
    return clip.repeat(-(-n // clip.shape[0]))[:n]


def griffin_lim_decode(decoder, tokens, speaker, emotion, iterations: int = 32) -> torch.Tensor:
    import torchaudio

    from dragoman.nodes.modules.codec_features import FRAME_HOP, N_FFT, WIN

    with torch.inference_mode():
        frames = decoder.net(tokens[None], torch.tensor([tokens.shape[0]]), speaker[None], emotion[None])
        power = decoder.synth.envelope.to_linear(frames.log_mel)  # [1, n_freqs, F] per-bin power
        gl = torchaudio.transforms.GriffinLim(n_fft=N_FFT, win_length=WIN, hop_length=FRAME_HOP, power=1.0,
                                              n_iter=iterations, momentum=0.99)
        return gl(power.sqrt())[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the project machine has 2 cores)")
    parser.add_argument("--uniss", action="store_true", help="also time the wave generator at UniSS's 1536 channels")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from dragoman.nodes.decoder import Decoder, WaveDecoder
    from dragoman.nodes.emotion_tokenizer import EmotionTokenizer
    from dragoman.nodes.semantic_tokenizer import SemanticTokenizer
    from dragoman.nodes.speaker_encoder import SpeakerEncoder

    wav = source_audio(args.seconds)
    tokens = SemanticTokenizer.default().run(audio=[wav])["semantic_tokens"][0]
    speaker = SpeakerEncoder.default().run(audio=[wav])["speaker_tokens"][0]
    emotion = EmotionTokenizer.default().run(audio=[wav])["emotion_tokens"][0]
    decoder = Decoder.default()
    print(f"{len(tokens)} semantic tokens = {args.seconds:.1f} s of speech; torch threads {torch.get_num_threads()}")

    def run_decoder():
        return decoder.decode([tokens], [speaker], [emotion])[0]

    rows = [("decoder (mel + harmonic synth)", best_time(run_decoder, args.repeats))]
    rows.append(("griffin-lim, 32 iterations", best_time(lambda: griffin_lim_decode(decoder, tokens, speaker, emotion), args.repeats)))
    widths = [("wave-decoder, 256 channels", 256)] + ([("wave-decoder, 1536 channels (UniSS)", 1536)] if args.uniss else [])
    for name, channels in widths:
        torch.manual_seed(0)
        wave = WaveDecoder({"net": {"codebook_size": decoder.codebook_size, "channels": channels}}).eval()
        rows.append((name, best_time(lambda: wave.decode([tokens], [speaker], [emotion])[0], max(1, args.repeats // 2))))

    base = rows[0][1]
    print(f"{'method':40s} {'seconds':>8s} {'RTF':>7s} {'x decoder':>10s}")
    for name, seconds in rows:
        print(f"{name:40s} {seconds:8.3f} {seconds / args.seconds:7.3f} {seconds / base:10.2f}")


if __name__ == "__main__":
    main()
