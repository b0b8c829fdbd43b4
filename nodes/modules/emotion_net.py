"""EmotionNet: utterance-level style encoder -> a few FSQ emotion tokens + an emotion classifier.

UniSS lets style ride on BiCodec's global speaker tokens; dragoman splits it out so emotion can be
measured, controlled and swapped on its own (DESIGN §1). Log-mel -> 1-D conv stack (padding
masked after every layer, so a batch gives exactly the per-item result) -> masked mean + std
pooling over time (pitch level/range, energy and rate all show up in these statistics) ->
`num_tokens` FSQ tokens -> a linear classifier that reads only the quantised codes, so the tokens
must carry the emotion. With `num_speakers` > 0 a speaker adversary behind gradient reversal
reads the same codes (`dragoman.nodes.modules.adversary`): pitch level is both an emotion cue and
a speaker trait, and without it the tokens also say who is speaking.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from dragoman.nodes.modules.adversary import SpeakerAdversary
from dragoman.nodes.modules.features import LogMel, length_mask
from dragoman.nodes.modules.fsq import FSQ


@dataclasses.dataclass
class EmotionNetConfig:
    n_mels: int = 80
    channels: int = 128
    layers: int = 3
    kernel_size: int = 5
    num_tokens: int = 4
    fsq_levels: list[int] = dataclasses.field(default_factory=lambda: [8, 5, 5, 5])
    num_emotions: int = 4
    num_speakers: int = 0  # > 0 builds the speaker-adversarial branch


class EmotionNet(nn.Module):
    def __init__(self, cfg: EmotionNetConfig):
        super().__init__()
        self.cfg = cfg
        self.frontend = LogMel(n_mels=cfg.n_mels)
        self.input_norm = nn.LayerNorm(cfg.n_mels)
        convs, width = [], cfg.n_mels
        for _ in range(cfg.layers):
            convs.append(nn.Conv1d(width, cfg.channels, cfg.kernel_size, padding=cfg.kernel_size // 2))
            width = cfg.channels
        self.convs = nn.ModuleList(convs)
        self.fsq = FSQ(cfg.fsq_levels)
        self.to_latent = nn.Linear(2 * cfg.channels, cfg.num_tokens * self.fsq.dim)
        self.classifier = nn.Linear(cfg.num_tokens * self.fsq.dim, cfg.num_emotions)
        self.adversary = SpeakerAdversary(cfg.num_tokens * self.fsq.dim, cfg.num_speakers) if cfg.num_speakers > 0 else None

    def encode(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """wav [B, T], lengths [B] -> (codes [B, num_tokens, fsq_dim], token ids [B, num_tokens])."""
        feats, frames = self.frontend(wav, lengths)
        mask = length_mask(frames, feats.shape[-1]).unsqueeze(1)  # [B, 1, F]
        x = self.input_norm(feats.transpose(1, 2)).transpose(1, 2) * mask
        for conv in self.convs:
            x = torch.nn.functional.gelu(conv(x)) * mask
        count = mask.sum(dim=-1).clamp_min(1)
        mean = x.sum(dim=-1) / count
        var = ((x - mean.unsqueeze(-1)) ** 2 * mask).sum(dim=-1) / count
        pooled = torch.cat([mean, (var + 1e-5).sqrt()], dim=-1)
        latent = self.to_latent(pooled).view(-1, self.cfg.num_tokens, self.fsq.dim)
        return self.fsq(latent)

    def classify_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.classifier(codes.flatten(1))

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (emotion logits [B, num_emotions], token ids [B, num_tokens])."""
        codes, ids = self.encode(wav, lengths)
        return self.classify_codes(codes), ids

    def tokens_to_logits(self, ids: torch.Tensor) -> torch.Tensor:
        """Classify from token ids alone (what a downstream node receives)."""
        return self.classify_codes(self.fsq.indices_to_codes(ids))
