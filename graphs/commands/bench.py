"""`dragoman bench`: benchmarks that compare two implementations in one run and print the ratio.

Sub-commands (one parser each, added in `register`; more benchmarks slot in beside `decode`):

- `dragoman bench decode`: the static-cache decode loop (`dragoman.kernels.decode`) against HF
  `generate` on the same random Qwen2, tokens/s of each and their ratio.
"""
from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser(
        "bench",
        help="speed benchmarks (each compares two implementations in one run)",
        description="Speed benchmarks; each compares two implementations in one run.",
    )
    kinds = bench.add_subparsers(dest="bench", metavar="BENCHMARK")
    bench.set_defaults(handler=lambda args: _no_benchmark(bench))
    _register_decode(kinds)


def _no_benchmark(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def _register_decode(kinds: argparse._SubParsersAction) -> None:
    p = kinds.add_parser(
        "decode",
        help="static-cache decode loop vs HF generate on a random Qwen2 (tokens/s, ratio)",
        description=(
            "Greedy decoding of the same random Qwen2ForCausalLM with the same prompt by "
            "dragoman's static-cache loop and by HF generate; reports tokens/s of each and the "
            "ratio. Shape options override the preset."
        ),
    )
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--preset", default="small", help="named shape: small (default) or qwen2.5-1.5b")
    p.add_argument("--tokens", type=int, default=256, help="new tokens per row (default 256)")
    p.add_argument("--prompt-tokens", type=int, default=32, help="prompt length (default 32)")
    p.add_argument("--batch", type=int, default=1, help="rows decoded together (default 1)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds; best of each side (default 5)")
    p.add_argument("--layers", type=int, help="decoder layers")
    p.add_argument("--hidden", type=int, help="hidden size")
    p.add_argument("--heads", type=int, help="query heads")
    p.add_argument("--kv-heads", type=int, help="key/value heads")
    p.add_argument("--intermediate", type=int, help="MLP width")
    p.add_argument("--vocab", type=int, help="vocabulary size")
    p.add_argument("--dtype", help="float32, bfloat16 or float16 (default: the preset's)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    # One intra-op thread by default: at batch 1 a small model's ops are too small to split, and
    # on a loaded 2-core machine both decoders fell ~10x (1,152 -> 78 tok/s for ours, 476 -> 95
    # for HF, same run) when torch's 2-thread pool had to wait for a descheduled thread.
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads for both decoders (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed for the weights and the prompt")
    p.set_defaults(handler=_run_decode)


def _run_decode(args: argparse.Namespace) -> int:
    from dragoman.kernels.decode_benchmark import resolve_shape, run_decode_benchmark

    shape, preset_dtype = resolve_shape(
        args.preset, layers=args.layers, hidden=args.hidden, heads=args.heads,
        kv_heads=args.kv_heads, intermediate=args.intermediate, vocab=args.vocab,
    )
    result = run_decode_benchmark(
        shape=shape, new_tokens=args.tokens, prompt_tokens=args.prompt_tokens, batch=args.batch,
        repeats=args.repeats, device=args.device, dtype=args.dtype or preset_dtype,
        seed=args.seed, threads=args.threads,
    )
    if args.json:
        print(json.dumps(result))
        return 0
    s = result["shape"]
    print(
        f"decode, {result['device']}, batch {result['batch']}, {result['dtype']}, "
        f"{s['layers']} layers x {s['hidden']} hidden, {s['heads']}/{s['kv_heads']} heads, "
        f"vocab {s['vocab']}; {result['new_tokens']} new tokens after {result['prompt_tokens']}"
    )
    print(f"  ours (static cache): {result['ours_tok_s']:>10.1f} tok/s")
    if "ours_torch_ops_tok_s" in result:
        print(f"  ours, torch ops:     {result['ours_torch_ops_tok_s']:>10.1f} tok/s")
    print(f"  HF generate:         {result['hf_tok_s']:>10.1f} tok/s")
    print(f"  ratio (ours / HF):   {result['ratio']:>10.2f}x   greedy tokens equal: {result['tokens_match']}")
    return 0
