"""Decode speed: dragoman's static-cache loop against HF `generate`, same model, same prompt.

Same benchmark as `dragoman bench decode` (all its options work here), e.g.

    python examples/bench_decode.py                       # small random Qwen2 on CPU
    python examples/bench_decode.py --json --tokens 512
    python examples/bench_decode.py --preset qwen2.5-1.5b --device cuda --tokens 256

It prints tokens/s of both decoders and their ratio; on CUDA also the loop with torch ops only
(no Triton, no CUDA graph). The measurement itself lives in `dragoman.kernels.decode_benchmark`.
"""
import sys

from dragoman.graphs.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "decode", *sys.argv[1:]]))
