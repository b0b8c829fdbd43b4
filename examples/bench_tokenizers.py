"""Benchmark: how long the front nodes take to tokenise one minute of speech on this machine.

    python examples/bench_tokenizers.py [--threads 2] [--repeats 3] [--random]

For each node (speaker encoder, content tokenizer, emotion tokenizer) it times, in one run,
(a) one 60 s clip, (b) ten 6 s clips in one padded batch, (c) the same ten clips one by one,
and prints the seconds, the real-time factor (audio seconds per compute second) and the ratio
batch vs one-by-one. The target is < 3 s per minute of audio per node on a 2-core CPU.
The speaker encoder reads only the first `ref_seconds` (6 s) of each clip, as UniSS does, so for
it (a) is a single 6 s reference and (b)/(c) are the meaningful minute.

The committed default checkpoints are timed; `--random` times untrained networks built from the
packaged training configs instead (same shapes, for a checkout without checkpoints).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

EXAMPLE = Path(__file__).resolve().parent / "audio" / "en_example.wav"
NODES = ("speaker_encoder", "content_tokenizer", "emotion_tokenizer")


def speech(seconds: float) -> torch.Tensor:
    """The example recording tiled to `seconds` (noise if the file is missing)."""
    from dragoman.nodes.audio.io import read_audio

    wav = read_audio(EXAMPLE) if EXAMPLE.is_file() else torch.randn(16000) * 0.1
    n = int(seconds * 16000)
    return wav.repeat(n // wav.numel() + 1)[:n]


def build(name: str, random_weights: bool):
    from omegaconf import OmegaConf

    from dragoman.nodes.registry import resolve_node_class
    from dragoman.nodes.training import load_train_config

    cls = resolve_node_class(name)
    if not random_weights:
        return cls.default()
    model = OmegaConf.to_container(load_train_config(name).model, resolve=True)
    model.pop("train_ds", None)
    model.pop("validation_ds", None)
    if name == "content_tokenizer":
        from dragoman.nodes.text_units import BLANK

        model["vocab"] = [BLANK, " ", *"abcdefghijklmnopqrstuvwxyz'", *(chr(0x4E00 + i) for i in range(600))]
    return cls(model)


def timed(fn, repeats: int) -> float:
    fn()  # warm-up: first calls allocate and pick kernels
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--random", action="store_true", help="untrained networks instead of the default checkpoints")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    minute, clips = speech(60.0), [speech(6.0 + 0.1 * i) for i in range(10)]
    audio_seconds = sum(c.numel() for c in clips) / 16000
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats}; "
          f"{'untrained' if args.random else 'default'} checkpoints")
    print(f"{'node':<18} {'60 s clip':>10} {'10 clips batch':>15} {'one by one':>11} {'x realtime':>11} {'batch/1x1':>10}")
    for name in NODES:
        node = build(name, args.random)
        whole = timed(lambda: node.run(audio=[minute]), args.repeats)
        batch = timed(lambda: node.run(audio=clips), args.repeats)
        single = timed(lambda: [node.run(audio=[c]) for c in clips], args.repeats)
        verdict = "ok" if max(whole, batch) < 3.0 else "SLOW"
        print(f"{name:<18} {whole:>9.3f}s {batch:>14.3f}s {single:>10.3f}s {audio_seconds / batch:>10.1f}x "
              f"{single / batch:>9.2f}x  {verdict}")


if __name__ == "__main__":
    main()
