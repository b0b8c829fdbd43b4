"""Achieved memory bandwidth of each Triton kernel vs its torch reference, as a fraction of peak.

Every kernel in `dragoman.kernels` is bandwidth-bound at the shapes decoding uses, so the
figure of merit is bytes moved per second over the device's peak (DESIGN §8). For each op this
times the Triton launcher and the torch reference on the same inputs (`triton.testing.do_bench`,
median), counts the bytes the op must move at least once (inputs read, outputs written), and
prints GB/s, the fraction of peak, and the speed-up over torch.

    python examples/bench_kernels.py                  # peak looked up from the device name
    python examples/bench_kernels.py --peak-gbs 3350 --json

Shapes are Qwen2.5-1.5B's (hidden 1536, 12/2 heads of 128, MLP 8960, UniSS vocabulary
180,407) with enough rows to be bandwidth-bound, and a BiCodec-like Snake layer (512 channels,
1 s at 16 kHz). On a machine without CUDA it says so and exits 0: on CPU the torch references
are the path the code takes, and Triton runs only through its (slow) interpreter.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch

# Peak DRAM bandwidth in GB/s from vendor spec sheets, matched against torch's device name
# (first match wins, so more specific names come first).
PEAK_GBS = (
    ("H200", 4800.0),
    ("H100 NVL", 3900.0),
    ("H100 PCIe", 2000.0),
    ("H100", 3350.0),  # SXM5, reported as "NVIDIA H100 80GB HBM3"
    ("A100-SXM4-80GB", 2039.0),
    ("A100 80GB PCIe", 1935.0),
    ("A100", 1555.0),
    ("L40S", 864.0),
    ("L4", 300.0),
    ("A10G", 600.0),
    ("RTX 4090", 1008.0),
)


def peak_gbs(props) -> tuple[float, str]:
    """Peak bandwidth of a CUDA device and where the number came from."""
    for key, gbs in PEAK_GBS:
        if key in props.name:
            return gbs, f"spec sheet ({key})"
    # Double data rate x memory clock (kHz) x bus width (bits) / 8: the theoretical DRAM peak.
    return 2 * props.memory_clock_rate * 1e3 * props.memory_bus_width / 8 / 1e9, "clock x bus width"


@dataclass
class Case:
    name: str
    shape: str
    bytes_moved: int
    triton: Callable[[], object]
    torch: Callable[[], object]


def _nbytes(*tensors: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def cases(device: str, scale: int = 1) -> list[Case]:
    """The benchmarked ops; `scale` divides the row counts (a small run to check the script)."""
    from dragoman.kernels.decode_attention import decode_attention_reference, decode_attention_triton
    from dragoman.kernels.rmsnorm import rms_norm_reference, rms_norm_triton
    from dragoman.kernels.rotary import apply_rotary_reference, apply_rotary_triton
    from dragoman.kernels.sampling import logits_pass_reference, logits_pass_triton, seen_mask
    from dragoman.kernels.snake import snake_reference, snake_triton
    from dragoman.kernels.swiglu import swiglu_reference, swiglu_triton

    bf16 = dict(device=device, dtype=torch.bfloat16)
    out = []

    rows = 8192 // scale
    x, res, w = torch.randn(rows, 1536, **bf16), torch.randn(rows, 1536, **bf16), torch.rand(1536, **bf16)
    out.append(Case(
        "rms_norm + residual", f"{rows}x1536 bf16", _nbytes(x, res, w) + 2 * _nbytes(x),
        lambda: rms_norm_triton(x, w, 1e-6, res), lambda: rms_norm_reference(x, w, 1e-6, res),
    ))

    q, k = torch.randn(rows, 12, 128, **bf16), torch.randn(rows, 2, 128, **bf16)
    cos, sin = torch.rand(rows, 128, **bf16), torch.rand(rows, 128, **bf16)
    out.append(Case(
        "rotary q+k", f"{rows} tokens, 12+2 heads x 128 bf16", 2 * _nbytes(q, k) + _nbytes(cos, sin),
        lambda: apply_rotary_triton(q, k, cos, sin), lambda: apply_rotary_reference(q, k, cos, sin),
    ))

    gate, up = torch.randn(rows // 4, 8960, **bf16), torch.randn(rows // 4, 8960, **bf16)
    out.append(Case(
        "swiglu", f"{rows // 4}x8960 bf16", _nbytes(gate, up) + _nbytes(gate),
        lambda: swiglu_triton(gate, up), lambda: swiglu_reference(gate, up),
    ))

    batch, length = 4, 16384 // scale
    qd = torch.randn(batch, 12, 128, **bf16)
    kc, vc = torch.randn(batch, 2, length, 128, **bf16), torch.randn(batch, 2, length, 128, **bf16)
    lengths = torch.full((batch,), length, dtype=torch.int32, device=device)
    out.append(Case(
        "decode attention", f"batch {batch}, {length} cached, 12/2 heads x 128 bf16",
        _nbytes(kc, vc, qd) + _nbytes(qd),
        lambda: decode_attention_triton(qd, kc, vc, lengths, 128**-0.5),
        lambda: decode_attention_reference(qd, kc, vc, lengths, 128**-0.5),
    ))

    logit_rows = max(1, 64 // scale)
    logits = torch.randn(logit_rows, 180407, **bf16)
    seen = seen_mask(torch.randint(0, 180407, (logit_rows, 512), device=device), 180407)
    out.append(Case(
        "sampling logits pass", f"{logit_rows}x180407 bf16, penalty + temperature",
        _nbytes(logits, seen) + logits.numel() * 4,
        lambda: logits_pass_triton(logits, seen, 1.1, 0.7),
        lambda: logits_pass_reference(logits, seen, 1.1, 0.7),
    ))

    clips = max(1, 8 // scale)
    wave = torch.randn(clips, 512, 16000, **bf16)
    alpha = torch.rand(512, device=device) + 0.1
    out.append(Case(
        "snake", f"{clips}x512x16000 bf16", 2 * _nbytes(wave),
        lambda: snake_triton(wave, alpha), lambda: snake_reference(wave, alpha),
    ))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peak-gbs", type=float, help="device peak bandwidth in GB/s (default: looked up)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_kernels: no CUDA device here; the kernels are benchmarked on a GPU only "
              "(on CPU the torch references are the code path).")
        return 0

    from triton.testing import do_bench

    props = torch.cuda.get_device_properties(0)
    peak, source = (args.peak_gbs, "--peak-gbs") if args.peak_gbs else peak_gbs(props)
    rows = []
    for case in cases("cuda"):
        ms = {"triton": do_bench(case.triton, return_mode="median"),
              "torch": do_bench(case.torch, return_mode="median")}
        gbs = {name: case.bytes_moved / (t * 1e-3) / 1e9 for name, t in ms.items()}
        rows.append({
            "op": case.name, "shape": case.shape, "bytes": case.bytes_moved,
            "triton_us": round(ms["triton"] * 1e3, 1), "torch_us": round(ms["torch"] * 1e3, 1),
            "triton_gbs": round(gbs["triton"], 1), "torch_gbs": round(gbs["torch"], 1),
            "triton_peak_fraction": round(gbs["triton"] / peak, 3),
            "torch_peak_fraction": round(gbs["torch"] / peak, 3),
            "speedup": round(ms["torch"] / ms["triton"], 2),
        })
    if args.json:
        print(json.dumps({"device": props.name, "peak_gbs": peak, "peak_source": source, "ops": rows}))
        return 0
    print(f"{props.name}: peak {peak:.0f} GB/s ({source})")
    header = f"{'op':<22}{'triton GB/s':>12}{'of peak':>9}{'torch GB/s':>12}{'of peak':>9}{'speed-up':>10}"
    print(header + "  shape")
    for r in rows:
        print(f"{r['op']:<22}{r['triton_gbs']:>12.0f}{r['triton_peak_fraction']:>9.0%}"
              f"{r['torch_gbs']:>12.0f}{r['torch_peak_fraction']:>9.0%}{r['speedup']:>9.2f}x  {r['shape']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
