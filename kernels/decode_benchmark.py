"""Decode-speed benchmark: `StaticDecoder` against HF `generate` on the same random Qwen2, one run.

Both decoders get the same randomly initialised `Qwen2ForCausalLM`, the same prompt and the same
number of new tokens (greedy, no eos, so both write exactly `new_tokens` per row); the timed
region of each includes its prefill. Runs alternate (ours, HF, ours, HF, ...) so that load from
other processes on a shared machine hits both alike, and each side reports its best run: the
run least disturbed by that load is the closest to what the code itself costs.

`tokens_match` says whether both wrote the same ids. In float32 they do (the tests hold the
loop to that); in bf16 the fused kernels round differently from HF's op-by-op chain, so on a
random, nearly flat model the greedy paths may part after a few tokens.

Used by `dragoman bench decode` and `examples/bench_decode.py`.
"""
from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass, replace

import torch

from dragoman.nodes.errors import DragomanError


@dataclass(frozen=True)
class DecodeShape:
    """A Qwen2 shape; the defaults are a small model whose weights stay in the CPU's caches."""

    layers: int = 4
    hidden: int = 128
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 352
    vocab: int = 2048

    def check(self) -> None:
        for name, value in asdict(self).items():
            if value < 1:
                raise DragomanError(f"bench decode: --{name.replace('_', '-')} must be >= 1, got {value}")
        if self.hidden % self.heads or (self.hidden // self.heads) % 2:
            raise DragomanError(
                f"bench decode: --hidden {self.hidden} must split into --heads {self.heads} "
                "heads of an even size"
            )
        if self.heads % self.kv_heads:
            raise DragomanError(
                f"bench decode: --heads {self.heads} must be a multiple of --kv-heads {self.kv_heads}"
            )


# Named shapes: `qwen2.5-1.5b` is UniSS's translator (Qwen2.5-1.5B-Instruct with the vocabulary
# extended to 180,407, DESIGN §1), meant for a GPU in bf16.
PRESETS = {
    "small": (DecodeShape(), "float32"),
    "qwen2.5-1.5b": (
        DecodeShape(layers=28, hidden=1536, heads=12, kv_heads=2, intermediate=8960, vocab=180407),
        "bfloat16",
    ),
}

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def build_model(shape: DecodeShape, device: torch.device, dtype: torch.dtype, seed: int) -> torch.nn.Module:
    """A randomly initialised Qwen2ForCausalLM of `shape` (tied embeddings, as in UniSS)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=shape.vocab,
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        max_position_embeddings=32768,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen2ForCausalLM(config)
    return model.to(dtype).eval()


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device) -> tuple[float, torch.Tensor]:
    _synchronize(device)
    start = time.perf_counter()
    out = fn()
    _synchronize(device)
    return time.perf_counter() - start, out


def run_decode_benchmark(
    shape: DecodeShape = DecodeShape(),
    new_tokens: int = 256,
    prompt_tokens: int = 32,
    batch: int = 1,
    repeats: int = 5,
    device: str = "cpu",
    dtype: str = "float32",
    seed: int = 0,
    threads: int | None = None,
    progress: bool = True,
) -> dict:
    """Time both decoders; return tokens/s of each, their ratio and the settings."""
    shape.check()
    if min(new_tokens, prompt_tokens, batch, repeats, 1 if threads is None else threads) < 1:
        raise DragomanError(
            "bench decode: --tokens, --prompt-tokens, --batch, --repeats and --threads must be >= 1"
        )
    if dtype not in _DTYPES:
        raise DragomanError(f"bench decode: --dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DragomanError(f"bench decode: --device {device} asked for, but no CUDA device is available")
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _measure(shape, new_tokens, prompt_tokens, batch, repeats, dev, dtype, seed, progress)
    finally:
        torch.set_num_threads(previous_threads)


def _measure(
    shape: DecodeShape, new_tokens: int, prompt_tokens: int, batch: int, repeats: int,
    dev: torch.device, dtype: str, seed: int, progress: bool,
) -> dict:
    from tqdm import tqdm
    from transformers import __version__ as transformers_version

    from dragoman.kernels.decode import StaticDecoder
    from dragoman.kernels.dispatch import use_reference

    model = build_model(shape, dev, _DTYPES[dtype], seed)
    generator = torch.Generator().manual_seed(seed + 1)
    prompt = torch.randint(0, shape.vocab, (batch, prompt_tokens), generator=generator).to(dev)
    mask = torch.ones_like(prompt)
    ours = StaticDecoder(model)

    def run_ours() -> torch.Tensor:
        return ours.generate(prompt, new_tokens)

    def run_hf() -> torch.Tensor:
        with torch.inference_mode():
            return model.generate(
                prompt, attention_mask=mask, max_new_tokens=new_tokens, do_sample=False,
                eos_token_id=None, pad_token_id=0,
            )

    runs = {"ours": run_ours, "hf": run_hf}
    if dev.type == "cuda":
        # The same loop with every op on its torch reference and no CUDA graph: separates what the
        # Triton kernels and the graph add from what the static cache alone gives.
        plain = StaticDecoder(model, cuda_graph=False)

        def run_torch_ops() -> torch.Tensor:
            with use_reference():
                return plain.generate(prompt, new_tokens)

        runs["ours_torch_ops"] = run_torch_ops

    for fn in runs.values():  # warm-up: allocations, graph capture, Triton compilation
        fn()
    best = {name: float("inf") for name in runs}
    outputs = {}
    for _ in tqdm(range(repeats), desc="bench decode", unit="round", disable=not progress):
        for name, fn in runs.items():
            seconds, outputs[name] = _timed(fn, dev)
            best[name] = min(best[name], seconds)

    # Tokens actually written per side (both should write batch x new_tokens: no eos is set).
    rate = {name: batch * (out.shape[1] - prompt_tokens) / best[name] for name, out in outputs.items()}
    result = {
        "ours_tok_s": round(rate["ours"], 1),
        "hf_tok_s": round(rate["hf"], 1),
        "ratio": round(rate["ours"] / rate["hf"], 2),
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({platform.machine()})",
        "batch": batch,
        "dtype": dtype,
        "shape": asdict(shape),
        "prompt_tokens": prompt_tokens,
        "new_tokens": new_tokens,
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "tokens_match": bool(torch.equal(outputs["ours"], outputs["hf"])),
        "torch": torch.__version__,
        "transformers": transformers_version,
    }
    if "ours_torch_ops" in best:
        result["ours_torch_ops_tok_s"] = round(rate["ours_torch_ops"], 1)
    return result


def resolve_shape(preset: str, **overrides: int | None) -> tuple[DecodeShape, str]:
    """A preset's shape and dtype with any non-None field overridden."""
    if preset not in PRESETS:
        raise DragomanError(f"bench decode: unknown --preset {preset!r} (known: {', '.join(PRESETS)})")
    shape, dtype = PRESETS[preset]
    return replace(shape, **{k: v for k, v in overrides.items() if v is not None}), dtype
