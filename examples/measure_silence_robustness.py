"""Does the recogniser care where the speech starts? Two ContentTokenizer checkpoints, one run.

Each recording of the manifest is read as it is, with 80 ms of digital silence in front, with
300 ms before and after, and with the same plus white noise at -60 dBFS under all of it; the
ContentTokenizer's recogniser (`transcribe`, language given, its LMs) transcribes every version
and the corpus CER is printed per checkpoint, with the ratio of the two. The corpus's recordings
all start speaking 10-90 ms in, so a recogniser trained on them alone can learn where speech
begins (README, "Silence around the speech").

    python examples/measure_silence_robustness.py --baseline runs/content_head_s5/content_lm.nemo \\
        [--checkpoint default] [--manifest data/corpus/test.jsonl] [--limit 400] [--json]
"""
from __future__ import annotations

import argparse
import json

from bench_modes import run_main

SAMPLE_RATE = 16_000


def variants(wavs) -> dict[str, list]:
    """The recordings and their padded or noisy versions (noise seeded: every run hears the same)."""
    import torch

    gen = torch.Generator().manual_seed(0)

    def silence(ms: int):
        return torch.zeros(SAMPLE_RATE * ms // 1000)

    def hiss(n: int):
        return 1e-3 * torch.randn(n, generator=gen)  # 20 log10(1e-3) = -60 dBFS

    padded = [torch.cat([silence(300), w, silence(300)]) for w in wavs]
    return {"the recordings": list(wavs),
            "80 ms of silence in front": [torch.cat([silence(80), w]) for w in wavs],
            "300 ms before and after": padded,
            "the same with -60 dBFS hiss": [p + hiss(p.shape[0]) for p in padded]}


def measure(manifest: str, limit: int | None, checkpoints: dict[str, str]) -> dict:
    import torch

    from dragoman.nodes.codec_eval import _cer_by_language
    from dragoman.nodes.content_tokenizer import ContentTokenizer
    from dragoman.nodes.node_eval import load_audio, load_rows

    rows = load_rows(manifest, limit=limit, need=("text", "lang"))
    inputs = variants(load_audio(rows))
    result = {"manifest": manifest, "n": len(rows), "checkpoints": checkpoints, "cer": {}}
    for name, spec in checkpoints.items():
        node = (ContentTokenizer.default() if spec == "default" else ContentTokenizer.restore_from(spec)).eval()
        with torch.inference_mode():
            result["cer"][name] = {label: _cer_by_language(node, rows, wavs, 8)[0] for label, wavs in inputs.items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, help="the ContentTokenizer .nemo to compare with")
    parser.add_argument("--checkpoint", default="default", help="the ContentTokenizer .nemo measured (default: committed)")
    parser.add_argument("--manifest", default="data/corpus/test.jsonl")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.manifest, args.limit, {"baseline": args.baseline, "checkpoint": args.checkpoint})
    if args.json:
        print(json.dumps(result))
        return
    base, ours = result["cer"]["baseline"], result["cer"]["checkpoint"]
    print(f"{result['n']} lines of {args.manifest}: CER of {args.baseline} vs {args.checkpoint}")
    print("| input | baseline | checkpoint | checkpoint / baseline |")
    print("| --- | --- | --- | --- |")
    for label in base:
        print(f"| {label} | {base[label]:.3f} | {ours[label]:.3f} | {ours[label] / max(base[label], 1e-9):.2f} |")


if __name__ == "__main__":
    run_main(main)
