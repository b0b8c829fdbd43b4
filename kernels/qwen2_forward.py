"""A transformers `Qwen2ForCausalLM` forward over a static, pre-allocated KV cache.

`StaticQwen2` holds references to the HF model's own parameters (nothing is copied: the 3.1 GB of
a bf16 Qwen2.5-1.5B stay where `from_pretrained` put them), a KV cache allocated once per
(batch, capacity), and cos/sin tables for every position of that capacity, computed by the
model's own rotary module (so any static RoPE variant in the config is honoured).

- `prefill(input_ids)` runs the prompt with plain torch ops (SDPA with a causal mask), writes its
  keys/values into the cache and returns the last position's logits.
- `step(tokens, position)` runs one token per row through the dispatch ops of
  `dragoman.kernels` (Triton on CUDA, torch references on CPU). The position is a one-element
  device tensor and the attention length is derived from it on the device, so the step has no
  host-side shape dependence and can be captured in a CUDA graph and replayed at every position.

`output_ids` keeps only those rows of the output layer: logits come back over them, in that
order. A caller that never samples the other ids (the default translator writes 662 of its 21,120
ids) saves the rest of the largest matrix product of a step: with hidden 256 and 4 layers the
full head was ~60 % of a CPU step's multiply-adds (5.4 M of 8.6 M).

Residual adds are folded into the following RMSNorm (`rms_norm(x, w, residual=...)` returns the
normed row and the new residual), which is the same arithmetic as HF's `residual + x; norm(...)`.
Prompts in a batch must have equal lengths (no padding mask).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dragoman.kernels.decode_attention import decode_attention
from dragoman.kernels.rmsnorm import rms_norm, rms_norm_reference
from dragoman.kernels.rotary import apply_rotary, apply_rotary_reference, signed_sin
from dragoman.kernels.swiglu import swiglu, swiglu_reference
from dragoman.nodes.errors import DragomanError

# RoPE variants whose frequencies depend on the running sequence length cannot be tabulated once.
_DYNAMIC_ROPE = ("dynamic", "longrope")


@dataclass(frozen=True)
class _LayerWeights:
    """One decoder layer's parameters, as references into the HF module."""

    input_norm: torch.Tensor
    post_norm: torch.Tensor
    wq: torch.Tensor
    bq: torch.Tensor | None
    wk: torch.Tensor
    bk: torch.Tensor | None
    wv: torch.Tensor
    bv: torch.Tensor | None
    wo: torch.Tensor
    w_gate: torch.Tensor
    w_up: torch.Tensor
    w_down: torch.Tensor


def _layer_weights(layer: torch.nn.Module) -> _LayerWeights:
    attn, mlp = layer.self_attn, layer.mlp
    return _LayerWeights(
        input_norm=layer.input_layernorm.weight,
        post_norm=layer.post_attention_layernorm.weight,
        wq=attn.q_proj.weight, bq=attn.q_proj.bias,
        wk=attn.k_proj.weight, bk=attn.k_proj.bias,
        wv=attn.v_proj.weight, bv=attn.v_proj.bias,
        wo=attn.o_proj.weight,
        w_gate=mlp.gate_proj.weight, w_up=mlp.up_proj.weight, w_down=mlp.down_proj.weight,
    )


class StaticQwen2:
    """Prefill and single-token steps of a `Qwen2ForCausalLM` over a static KV cache."""

    def __init__(self, model: torch.nn.Module, output_ids: torch.Tensor | None = None):
        config = getattr(model, "config", None)
        if getattr(config, "model_type", None) != "qwen2" or not hasattr(model, "lm_head"):
            raise DragomanError(
                f"static decoder: expected a transformers Qwen2ForCausalLM, got {type(model).__name__}"
            )
        layer_types = getattr(config, "layer_types", None) or []
        if any(t != "full_attention" for t in layer_types):
            raise DragomanError("static decoder: sliding-window attention layers are not supported")
        self.rotary = model.model.rotary_emb
        if getattr(self.rotary, "rope_type", "default") in _DYNAMIC_ROPE:
            raise DragomanError(
                f"static decoder: RoPE type {self.rotary.rope_type!r} depends on the sequence length"
            )
        attn = model.model.layers[0].self_attn
        self.n_heads = config.num_attention_heads
        self.n_kv_heads = config.num_key_value_heads
        self.head_dim = attn.head_dim
        self.scale = float(attn.scaling)
        self.eps = float(config.rms_norm_eps)
        self.embed = model.model.embed_tokens.weight
        self.final_norm = model.model.norm.weight
        self.lm_head = model.lm_head.weight
        if output_ids is not None:  # a copy of those rows (small), not a reference
            self.lm_head = self.lm_head.index_select(0, output_ids.to(self.lm_head.device)).contiguous()
        #: Width of the logits: the vocabulary, or len(output_ids).
        self.vocab_size = self.lm_head.shape[0]
        self.layers = [_layer_weights(layer) for layer in model.model.layers]
        self.dtype = self.embed.dtype
        self.device = self.embed.device
        self.batch = 0
        self.capacity = 0
        self.k_cache: torch.Tensor | None = None
        self.v_cache: torch.Tensor | None = None

    def allocate(self, batch: int, capacity: int) -> None:
        """(Re)allocate the KV cache and RoPE tables for `batch` rows of up to `capacity` tokens."""
        shape = (len(self.layers), batch, self.n_kv_heads, capacity, self.head_dim)
        self.k_cache = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.v_cache = torch.zeros(shape, dtype=self.dtype, device=self.device)
        positions = torch.arange(capacity, device=self.device).unsqueeze(0)
        probe = torch.zeros(1, dtype=self.dtype, device=self.device)
        cos, sin = self.rotary(probe, positions)
        self.cos, self.sin = cos[0].contiguous(), sin[0].contiguous()
        self.batch, self.capacity = batch, capacity

    def _check_fits(self, batch: int, length: int) -> None:
        if batch != self.batch or length > self.capacity:
            raise DragomanError(
                f"static decoder: cache holds {self.batch} x {self.capacity} tokens, "
                f"asked for {batch} x {length}; call allocate() first"
            )

    def prefill(self, input_ids: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Run the prompt [B, S] with torch ops, fill cache positions start..start+S-1 (attending
        to what the cache holds before `start`); logits of the last position [B, V]."""
        batch, length = input_ids.shape
        end = start + length
        self._check_fits(batch, end)
        heads, kv_heads, dim = self.n_heads, self.n_kv_heads, self.head_dim
        x = F.embedding(input_ids, self.embed)
        cos = self.cos[start:end].repeat(batch, 1)
        sin = self.sin[start:end].repeat(batch, 1)
        # Query i sees keys 0..start+i (the tokens before `start` are all in its past).
        mask = None if start == 0 else torch.ones(length, end, dtype=torch.bool, device=self.device).tril(diagonal=start)
        sin_signed = signed_sin(sin)
        residual = None
        for i, w in enumerate(self.layers):
            h, residual = rms_norm_reference(x, w.input_norm, self.eps, residual)
            q = F.linear(h, w.wq, w.bq).view(batch * length, heads, dim)
            k = F.linear(h, w.wk, w.bk).view(batch * length, kv_heads, dim)
            v = F.linear(h, w.wv, w.bv).view(batch, length, kv_heads, dim).transpose(1, 2)
            q, k = apply_rotary_reference(q, k, cos, sin, sin_signed)
            q = q.view(batch, length, heads, dim).transpose(1, 2)
            k = k.view(batch, length, kv_heads, dim).transpose(1, 2)
            self.k_cache[i, :, :, start:end] = k
            self.v_cache[i, :, :, start:end] = v
            if start:
                k, v = self.k_cache[i, :, :, :end], self.v_cache[i, :, :, :end]
            attn = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=mask is None and length > 1, scale=self.scale,
                enable_gqa=heads != kv_heads,
            )
            x = F.linear(attn.transpose(1, 2).reshape(batch, length, heads * dim), w.wo)
            h, residual = rms_norm_reference(x, w.post_norm, self.eps, residual)
            x = F.linear(swiglu_reference(F.linear(h, w.w_gate), F.linear(h, w.w_up)), w.w_down)
        h, _ = rms_norm_reference(x[:, -1], self.final_norm, self.eps, residual[:, -1])
        return F.linear(h, self.lm_head)

    def extend(self, input_ids: torch.Tensor, start: int) -> torch.Tensor:
        """Logits [B, V] after `input_ids` [B, S] written at cache index `start`: `step` for one
        token (the fused decode path), `prefill` from `start` for several."""
        if input_ids.shape[1] == 1:
            return self.step(input_ids[:, 0], torch.tensor([start], dtype=torch.long, device=self.device))
        return self.prefill(input_ids, start)

    def step(self, tokens: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """One token per row [B] at cache index `position` (long tensor [1]) -> logits [B, V].

        Every row is at the same position (equal-length prompts), which is what lets the cache
        write be a single `index_copy_` and the lengths one broadcast.
        """
        batch = tokens.shape[0]
        heads, kv_heads, dim = self.n_heads, self.n_kv_heads, self.head_dim
        x = F.embedding(tokens, self.embed)
        cos = self.cos.index_select(0, position).expand(batch, -1)
        sin = self.sin.index_select(0, position).expand(batch, -1)
        sin_signed = None if cos.is_cuda else signed_sin(sin)
        lengths = (position + 1).to(torch.int32).expand(batch)
        residual = None
        for i, w in enumerate(self.layers):
            h, residual = rms_norm(x, w.input_norm, self.eps, residual)
            q = F.linear(h, w.wq, w.bq).view(batch, heads, dim)
            k = F.linear(h, w.wk, w.bk).view(batch, kv_heads, dim)
            v = F.linear(h, w.wv, w.bv).view(batch, kv_heads, 1, dim)
            q, k = apply_rotary(q, k, cos, sin, sin_signed)
            k_cache, v_cache = self.k_cache[i], self.v_cache[i]
            k_cache.index_copy_(2, position, k.unsqueeze(2))
            v_cache.index_copy_(2, position, v)
            attn = decode_attention(q, k_cache, v_cache, lengths, self.scale)
            x = F.linear(attn.view(batch, heads * dim), w.wo)
            h, residual = rms_norm(x, w.post_norm, self.eps, residual)
            x = F.linear(swiglu(F.linear(h, w.w_gate), F.linear(h, w.w_up)), w.w_down)
        h, _ = rms_norm(x, self.final_norm, self.eps, residual)
        return F.linear(h, self.lm_head)
