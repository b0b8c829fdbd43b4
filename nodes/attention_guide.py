"""Guided attention for the Translator's speech: a diagonal prior between speech and its text.

Why: the default Translator learnt to write 50 Hz semantic tokens that start on the right words
and then drift ("the students do not like to work" -> "the studreve hed four wathe parnes";
`examples/measure_tts.py`: recogniser CER 0.75 (en) / 0.97 (zh) on its TTS, against 0.03 / 0.13 on
the recordings). That is the classic failure of attention-based TTS trained on a few hours of
speech: nothing tells the model where in the text it is. Tachibana et al. (2017, "Efficiently
trainable text-to-speech ... with guided attention", arXiv 1710.08969) add a loss that makes the
text attention of a speech frame stay near the diagonal, which they report learns alignment
within a few thousand steps instead of failing.

In a decoder-only LM the text is part of the same sequence, so the guide works on chosen heads
of chosen layers: for the query that predicts speech token j of T, the head's attention restricted
to the n = 0..N-1 tokens of the text that speech says (renormalised over that span, so the head
may still look elsewhere, e.g. at the speaker tokens) pays

    W[j, n] = 1 - exp(-((n + 0.5) / N - (j + 0.5) / T)^2 / (2 sigma^2))     (sigma 0.2, the paper's g)

Nothing changes at inference: the guide is a training loss only, and the heads are computed from
the layer's own inputs captured by forward pre-hooks (the main forward keeps its fused SDPA).
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterator, Optional

import torch


@dataclasses.dataclass
class AlignLossConfig:
    weight: float = 0.0                   # 0: off (the loss is still measured in validation when spans exist)
    sigma: float = 0.2                    # width of the diagonal band, as a fraction of both lengths
    heads: list[int] = dataclasses.field(default_factory=lambda: [0])
    layers: Optional[list[int]] = None    # None: every layer


def diagonal_penalty(n_speech: int, n_text: int, sigma: float, device=None) -> torch.Tensor:
    """[n_speech, n_text] weights: ~0 near the diagonal, -> 1 far from it."""
    j = (torch.arange(n_speech, device=device, dtype=torch.float32) + 0.5) / n_speech
    n = (torch.arange(n_text, device=device, dtype=torch.float32) + 0.5) / n_text
    return 1.0 - torch.exp(-((n[None, :] - j[:, None]) ** 2) / (2.0 * sigma * sigma))


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    from transformers.models.qwen2.modeling_qwen2 import rotate_half

    return x * cos + rotate_half(x) * sin


def span_attention(attn: torch.nn.Module, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                   queries: torch.Tensor, keys: torch.Tensor, heads: list[int]) -> torch.Tensor:
    """Attention probabilities of `heads` from positions `queries` over positions `keys` only
    (softmax over `keys`): [len(heads), Tq, Tk]. `hidden` [T, D] is the attention layer's input
    for one row and `cos`/`sin` [T, head_dim] its rotary tables, as the HF Qwen2 layer sees them.
    Since every key precedes every query of its own sequence, the causal mask plays no part."""
    return gathered_attention(attn, (hidden[queries], cos[queries], sin[queries]),
                              (hidden[keys], cos[keys], sin[keys]), heads)


def gathered_attention(attn: torch.nn.Module, q_rows, k_rows, heads: list[int],
                       allowed: torch.Tensor | None = None) -> torch.Tensor:
    """`span_attention` over gathered rows: `q_rows` / `k_rows` = (hidden [N, D], cos, sin
    [N, head_dim]) of the queries and keys, from any rows of a batch; `allowed` [Nq, Nk] masks
    the pairs that belong together (one span's speech and its text)."""
    d = attn.head_dim
    groups = attn.num_key_value_groups
    (hq, cq, sq), (hk, ck, sk) = q_rows, k_rows
    q = attn.q_proj(hq).view(len(hq), -1, d)[:, heads]                                 # [Nq, h, d]
    k = attn.k_proj(hk).view(len(hk), -1, d)[:, [h // groups for h in heads]]          # [Nk, h, d]
    q, k = _rotate(q, cq[:, None], sq[:, None]), _rotate(k, ck[:, None], sk[:, None])
    scores = torch.einsum("qhd,khd->hqk", q.float(), k.float()) * attn.scaling
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    return scores.softmax(dim=-1)


def batch_spans(spans: torch.Tensor) -> list[tuple[int, int, int, int, int]]:
    """(row, text_start, text_end, speech_start, speech_end) of every real span in a collated
    `align` tensor [B, K, 4] (-1 rows are padding; empty text or speech is skipped)."""
    out = []
    for b, k in (spans[..., 0] >= 0).nonzero().tolist():
        t0, t1, s0, s1 = spans[b, k].tolist()
        if t1 > t0 and s1 > s0:
            out.append((b, t0, t1, s0, s1))
    return out


@contextlib.contextmanager
def layer_inputs(lm: torch.nn.Module) -> Iterator[dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]:
    """{layer: (hidden [B, T, D], cos, sin [B, T, head_dim])}: what each Qwen2 attention layer
    received during the forward passes inside the block, for scoring heads afterwards
    (diagnostics and tests; training scores inside the layer, see AttentionCapture)."""
    seen: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def keep(i):
        return lambda module, args, kwargs: seen.__setitem__(i, (kwargs["hidden_states"], *kwargs["position_embeddings"]))

    handles = [layer.self_attn.register_forward_pre_hook(keep(i), with_kwargs=True)
               for i, layer in enumerate(lm.model.layers)]
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


class AttentionCapture:
    """Forward pre-hooks on chosen Qwen2 attention layers that score the guided heads while the
    layer runs (under FSDP a layer's weights are whole only during its own forward), for one
    batch's alignment spans; `loss()` afterwards is the mean penalty."""

    def __init__(self, lm: torch.nn.Module, cfg: AlignLossConfig):
        self.layers = lm.model.layers
        self.cfg = cfg
        chosen = cfg.layers if cfg.layers is not None else range(len(self.layers))
        self.chosen = [int(i) for i in chosen]
        heads = lm.config.num_attention_heads
        if any(not 0 <= i < len(self.layers) for i in self.chosen) or any(not 0 <= h < heads for h in cfg.heads):
            raise ValueError(f"align_loss: layers {self.chosen} / heads {list(cfg.heads)} outside the model's "
                             f"{len(self.layers)} layers x {heads} heads")
        self.total: torch.Tensor | None = None
        self.count = 0

    @contextlib.contextmanager
    def capturing(self, spans: torch.Tensor) -> Iterator["AttentionCapture"]:
        """`spans` [B, K, 4] = (text_start, text_end, speech_start, speech_end) row positions,
        -1 padded."""
        # All spans of the batch at once: one gathered attention per layer. A loop of small ones
        # per span made the recipe's phase-2 steps ~45 % slower (1,667 against ~2,400 steps in
        # 18 minutes); gathered, the guide costs 1.03x (examples/bench_attention_guide.py).
        qb, qp, kb, kp, q_span, k_span, weights = [], [], [], [], [], [], []
        for n, (b, t0, t1, s0, s1) in enumerate(batch_spans(spans)):
            # The query at position p predicts token p + 1: speech token j comes from s0 - 1 + j.
            qb += [b] * (s1 - s0)
            qp += range(s0 - 1, s1 - 1)
            q_span += [n] * (s1 - s0)
            kb += [b] * (t1 - t0)
            kp += range(t0, t1)
            k_span += [n] * (t1 - t0)
            weights.append(diagonal_penalty(s1 - s0, t1 - t0, self.cfg.sigma))
        if weights:
            device = spans.device
            qb, qp, kb, kp = (torch.tensor(x, device=device) for x in (qb, qp, kb, kp))
            allowed = torch.tensor(q_span, device=device)[:, None] == torch.tensor(k_span, device=device)[None, :]
            penalty = torch.block_diag(*weights).to(device)

        def hook(module, args, kwargs):
            hidden = kwargs["hidden_states"]
            cos, sin = kwargs["position_embeddings"]
            probs = gathered_attention(module, (hidden[qb, qp], cos[qb, qp], sin[qb, qp]),
                                       (hidden[kb, kp], cos[kb, kp], sin[kb, kp]), list(self.cfg.heads), allowed)
            part = (probs * penalty).sum()
            self.total = part if self.total is None else self.total + part
            self.count += probs.shape[0] * probs.shape[1]

        self.total, self.count = None, 0
        handles = [self.layers[i].self_attn.register_forward_pre_hook(hook, with_kwargs=True) for i in self.chosen] if weights else []
        try:
            yield self
        finally:
            for h in handles:
                h.remove()

    def loss(self) -> torch.Tensor | None:
        """Mean penalty per (speech query, head, layer); None when the batch had no spans."""
        return None if self.total is None else self.total / self.count
