"""Where does the Translator look while it speaks? Text attention of every head during TTS.

    python examples/translator_alignment.py [--checkpoint runs/translator_phase3.nemo]
                                            [--split dev] [--limit 40] [--png align.png] [--json]

For `--limit` utterances of the split's token cache, the TTS sequence (true text -> the
recording's semantic tokens) is run with teacher forcing, and for every (layer, head) the
attention of each speech token over the text tokens (renormalised over the text) is scored with
the guided-attention penalty of `nodes/attention_guide.py`: 0 = on the diagonal, 0.58 = spread
evenly (any lengths), 1 = far off it. A head that tracks the text has a low penalty; the plot shows the most
diagonal head of each layer for the first utterance (x: speech frames, y: text characters).
"""
from __future__ import annotations

import argparse
import json

import torch
from bench_modes import run_main


def head_penalties(node, cache: dict, split: str, limit: int, sigma: float = 0.2):
    from dragoman.nodes.attention_guide import diagonal_penalty, layer_inputs, span_attention
    from dragoman.nodes.translator_data import build_sequence

    records = cache["splits"][split][:limit]
    if not records:
        raise SystemExit(f"split {split!r} of the cache is empty")
    layers = node.lm.model.layers
    heads = list(range(node.lm.config.num_attention_heads))
    total = torch.zeros(len(layers), len(heads))
    first_maps = {}
    for k, rec in enumerate(records):
        seq = build_sequence("tts", rec, rec, node.tokenizer, cache["mean_rate"])
        t0, t1, s0, s1 = seq.align
        with torch.no_grad():
            with layer_inputs(node.lm) as seen:
                node.lm.model(input_ids=torch.tensor([seq.ids]))
            queries, keys = torch.arange(s0 - 1, s1 - 1), torch.arange(t0, t1)
            weight = diagonal_penalty(s1 - s0, t1 - t0, sigma)
            for i, layer in enumerate(layers):
                probs = span_attention(layer.self_attn, *(x[0] for x in seen[i]), queries, keys, heads)  # [H, T, N]
                total[i] += (probs * weight).sum(-1).mean(-1)
                if k == 0:
                    first_maps[i] = probs
    return total / len(records), first_maps, records[0]["text"]


def plot(maps: dict, penalties: torch.Tensor, text: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(maps), figsize=(4 * len(maps), 3.2), squeeze=False)
    for ax, (i, probs) in zip(axes[0], sorted(maps.items())):
        h = int(penalties[i].argmin())
        ax.imshow(probs[h].T.numpy(), aspect="auto", origin="lower", cmap="viridis")
        ax.set_title(f"layer {i} head {h}: penalty {penalties[i, h]:.2f}", fontsize=9)
        ax.set_xlabel("speech token")
        ax.set_ylabel("text character")
    fig.suptitle(f"TTS text attention, first utterance ({len(text)} characters)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="translator .nemo (default: the committed one)")
    parser.add_argument("--cache", default="data/translator_cache.pt", help="token cache (train_translator.py stage=cache)")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--png", default=None, help="write the most diagonal head of each layer (first utterance)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from dragoman.nodes.translator import Translator
    from dragoman.nodes.translator_data import load_cache

    node = Translator.load(args.checkpoint).eval()
    penalties, maps, text = head_penalties(node, load_cache(args.cache), args.split, args.limit)
    if args.png:
        plot(maps, penalties, text, args.png)
    rows = {f"layer{i}": [round(float(p), 3) for p in penalties[i]] for i in range(penalties.shape[0])}
    if args.json:
        print(json.dumps({"split": args.split, "n": args.limit, "penalty_per_head": rows,
                          "best": round(float(penalties.min()), 3)}))
        return
    print(f"guided-attention penalty per head (0 diagonal, 0.58 spread, 1 off), TTS on {args.split}:")
    for name, values in rows.items():
        print(f"  {name}: " + "  ".join(f"{v:.3f}" for v in values))
    print(f"most diagonal head: {float(penalties.min()):.3f}" + (f"; plot: {args.png}" if args.png else ""))


if __name__ == "__main__":
    run_main(main)
