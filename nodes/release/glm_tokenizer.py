"""GLM-4-Voice's WhisperVQ speech tokenizer: 16 kHz audio -> 12.5 Hz content tokens (16384 codes).

GLM-4-Voice (arXiv 2412.02612, §2.1) fine-tunes Whisper-large-v3's encoder with a vector
quantiser inserted after layer 16 and an average pool of 4 (50 Hz -> 12.5 Hz), trained for ASR, so
the tokens carry content. Made streamable: the two input convolutions are causal (left padding
2, the second with stride 2) and attention is block-causal — a frame sees every frame of its own
200-frame (4 s) block and of the blocks before it. UNISS_RELEASE items 7-9 fix what this module
honours:

- only the first `quantize_position` (16) layers exist, with no final LayerNorm; config.json says
  `encoder_layers: 32`, which is not the number built;
- tensor names have no `model.encoder.` prefix; the file also holds `codebook.weight`,
  `embed_positions2.weight` and the EMA buffers `ema_count` / `ema_weight`, which a strict load
  requires (they are training state, unused here);
- Whisper attention with a bias-free `k_proj`, pre-LayerNorm blocks, exact GELU;
- pooling right after layer `pooling_position` (zero right-padding to a multiple of 4), then the
  Euclidean (not cosine) nearest codebook row;
- front end: WhisperFeatureExtractor (128 log-mels, hop 160), `padding="longest"` with
  `pad_to_multiple_of=1280` samples and an attention mask; 30 s pieces; no volume normalisation;
  tokens are kept where the frame mask subsampled by 2 (conv stride) and 4 (pool) is 1.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import nn
from torch.nn import functional as F

# Whisper: 100 mel frames per second; conv2 halves them (50 Hz).
CONV_STRIDE = 2


class CausalConv1d(nn.Conv1d):
    """A conv that pads (kernel-1) zeros on the left only, so frame t sees no frame after t."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.kernel_size[0] - 1, 0)))


class WhisperSelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        split = lambda t: t.unflatten(-1, (self.heads, -1)).transpose(1, 2)  # noqa: E731
        out = F.scaled_dot_product_attention(split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x)),
                                             attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).flatten(2))


class WhisperEncoderLayer(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(LN(x)), then x + fc2(gelu(fc1(LN(x))))."""

    def __init__(self, dim: int, heads: int, ffn_dim: int):
        super().__init__()
        self.self_attn = WhisperSelfAttention(dim, heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, T, D], mask [B, 1, T, T] bool (True = may attend)."""
        x = x + self.self_attn(self.self_attn_layer_norm(x), mask)
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))


def block_causal_mask(valid: torch.Tensor, block: int | None) -> torch.Tensor:
    """valid [B, T] bool -> [B, 1, T, T]: query i may attend key j when j is a valid frame and
    j's block is not after i's (block None: every valid frame)."""
    length = valid.shape[1]
    keys = valid[:, None, None, :]
    if block is None:
        return keys.expand(-1, 1, length, -1)
    index = torch.arange(length, device=valid.device) // block
    return (index[None, :] <= index[:, None])[None, None] & keys


class WhisperVQEncoder(nn.Module):
    """log-mel [B, M, F] + frame mask [B, F] -> (token ids [B, T], token mask [B, T])."""

    def __init__(self, d_model: int, encoder_attention_heads: int, encoder_ffn_dim: int, num_mel_bins: int,
                 max_source_positions: int, quantize_position: int, pooling_position: int, pooling_kernel_size: int,
                 pooling_type: str, quantize_vocab_size: int, quantize_causal_block_size: int | None,
                 quantize_ema_decay: float | None, encoder_causal_convolution: bool):
        super().__init__()
        conv = CausalConv1d if encoder_causal_convolution else nn.Conv1d
        pad = 0 if encoder_causal_convolution else 1
        self.conv1 = conv(num_mel_bins, d_model, kernel_size=3, padding=pad)
        self.conv2 = conv(d_model, d_model, kernel_size=3, stride=CONV_STRIDE, padding=pad)
        self.embed_positions = nn.Embedding(max_source_positions, d_model)
        self.layers = nn.ModuleList(WhisperEncoderLayer(d_model, encoder_attention_heads, encoder_ffn_dim)
                                    for _ in range(quantize_position))
        self.codebook = nn.Embedding(quantize_vocab_size, d_model)
        # Used by layers after the quantiser, which the released encoder does not build.
        self.embed_positions2 = nn.Embedding(math.ceil(max_source_positions / pooling_kernel_size), d_model)
        if quantize_ema_decay is not None:  # EMA codebook training state: saved, so a strict load needs it
            self.register_buffer("ema_count", torch.ones(quantize_vocab_size))
            self.register_buffer("ema_weight", torch.zeros(quantize_vocab_size, d_model))
        self.pooling_position = pooling_position
        self.kernel = pooling_kernel_size
        self.pool = F.avg_pool1d if pooling_type == "avg" else F.max_pool1d
        self.block = quantize_causal_block_size

    def forward(self, features: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.gelu(self.conv1(features.to(self.conv1.weight.dtype)))
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        if x.shape[1] > self.embed_positions.weight.shape[0]:
            raise ValueError(f"{x.shape[1]} frames exceed the {self.embed_positions.weight.shape[0]} positions (30 s)")
        x = x + self.embed_positions.weight[: x.shape[1]]
        valid = frame_mask[:, ::CONV_STRIDE].bool()
        block = self.block
        mask = block_causal_mask(valid, block)
        for index, layer in enumerate(self.layers, start=1):
            x = layer(x, mask)
            if index == self.pooling_position:
                x, valid = self._pool(x), valid[:, :: self.kernel]
                block = block // self.kernel if block is not None else None
                mask = block_causal_mask(valid, block)
        return self.quantize(x), valid

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)
        if x.shape[-1] % self.kernel:
            x = F.pad(x, (0, self.kernel - x.shape[-1] % self.kernel))
        return self.pool(x, kernel_size=self.kernel).transpose(1, 2)

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """Nearest codebook row by Euclidean distance, in fp32 (||x||^2 - 2 x.c + ||c||^2)."""
        flat = x.reshape(-1, x.shape[-1]).float()
        book = self.codebook.weight.float()
        distances = torch.addmm(book.pow(2).sum(1)[None, :] + flat.pow(2).sum(1, keepdim=True), flat, book.t(),
                                alpha=-2.0)
        return distances.argmin(dim=1).reshape(x.shape[0], x.shape[1])


def release_state(raw: Mapping[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """The released file's keys (unprefixed); a full saved `WhisperVQ` model's `model.encoder.`
    keys are accepted the way the official loader does: prefix stripped, layers past the
    quantiser and the final `layer_norm` dropped."""
    prefix = "model.encoder."
    if not any(k.startswith(prefix) for k in raw):
        return dict(raw)
    state = {}
    for key, value in raw.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        if name.startswith("layer_norm.") or (name.startswith("layers.") and int(name.split(".")[1]) >= num_layers):
            continue
        state[name] = value
    return state


class GlmFeatureExtractor:
    """WhisperFeatureExtractor as the GLM-4-Voice tokenizer calls it, one piece at a time."""

    def __init__(self, params: Mapping[str, Any], pooling_kernel_size: int):
        from transformers import WhisperFeatureExtractor

        self.extractor = WhisperFeatureExtractor(**dict(params))
        self.sample_rate = int(params["sampling_rate"])
        self.piece = int(params["chunk_length"]) * self.sample_rate
        # Samples per token: hop x conv stride x pool (1280 for the release).
        self.multiple = int(params["hop_length"]) * CONV_STRIDE * pooling_kernel_size

    def pieces(self, wav: torch.Tensor) -> list[torch.Tensor]:
        return [wav[i: i + self.piece] for i in range(0, wav.shape[0], self.piece)]

    def __call__(self, piece: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """1-D float waveform -> (log-mel [1, M, F], frame mask [1, F])."""
        out = self.extractor([piece.float().cpu().numpy()], sampling_rate=self.sample_rate, return_attention_mask=True,
                             return_tensors="pt", padding="longest", pad_to_multiple_of=self.multiple)
        return out["input_features"], out["attention_mask"]
