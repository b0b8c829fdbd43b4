"""ContentNet: waveform -> 12.5 Hz content tokens, and a CTC recogniser that reads only the tokens.

UniSS's content tokens are GLM-4-Voice WhisperVQ ids: a Whisper encoder trained for ASR,
average-pooled x4 from 50 Hz to 12.5 Hz, then a 16384-entry codebook (DESIGN §1). The tiny
counterpart, trainable from scratch on a CPU:

    log-mel 100 Hz -> per-utterance mean/variance normalisation (removes channel and some speaker
    colour) -> two stride-2 convs (25 Hz) -> Conformer encoder (`features()`, 25 Hz)
    -> stride-2 conv (12.5 Hz) -> LayerNorm -> Linear -> FSQ -> token ids         (`encode()`)
    codes -> Linear -> Conformer at 12.5 Hz -> transposed conv x`upsample` (50 Hz)
    -> Conformer -> per-frame character logits for CTC                          (`decode_codes()`)

The recognition head sees nothing but the quantised codes, so the CTC loss can only fall if the
tokens carry the words. It upsamples before CTC because CTC needs at least one frame per output
character (more for doubled letters): English runs ~12-15 letters/s, above 12.5 Hz, and
DESIGN §6 saw English words merge even at 25 Hz. FSQ (no codebook to collapse) replaces
WhisperVQ's nearest-neighbour VQ, with the FSQ paper's levels for ~2^14 codes, [8, 8, 8, 6, 5] =
15360 (UniSS: 16384); with [7, 5, 5, 5, 5] = 4375 the Mandarin tokens lost detail: 31 % CER through
the tokens against 15 % from the encoder itself.

Training from scratch needs two aids (measured). CTC first spends hundreds of steps emitting
only blanks; in that phase varying codes are mere noise to the head, and the latents drift to
|z| ~ 4, where FSQ's tanh bound has no gradient left: 2 codes in use after 3 epochs and CER 98 %
in the first run, 1 code after 2 epochs with a LayerNorm added. Hence `latent_excess()`, a
penalty on latents beyond |z| = LATENT_RANGE (past it no code changes, so it costs nothing once
trained) that keeps the quantiser where it can still learn, and an auxiliary CTC head on the
continuous 25 Hz encoder (`aux_ctc`, the intermediate CTC of Lee & Watanabe 2021; two outputs per
frame, and phonemes as targets: `dragoman.nodes.phonemes`) that teaches the encoder sounds
without waiting for the token path. The recogniser (`decode_codes`) never
reads the auxiliary head.

Every layer masks padding (strided convs see zeros past an item's end both alone and in a batch),
so a padded batch gives each item exactly its one-by-one result.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.nn import functional as F

from dragoman.nodes.modules.adversary import SpeakerAdversary
from dragoman.nodes.modules.conformer import ConformerStack
from dragoman.nodes.modules.features import LogMel, length_mask
from dragoman.nodes.modules.fsq import FSQ

MEL_RATE = 100.0  # LogMel frames per second (10 ms hop)
TOKEN_RATE = MEL_RATE / 8  # three stride-2 stages: 12.5 tokens per second, as UniSS's GLM tokens
# tanh(2) = 0.96: beyond |z| = 2 every FSQ level used here (<= 7) has already rounded to its end.
LATENT_RANGE = 2.0


@dataclasses.dataclass
class ContentNetConfig:
    n_mels: int = 80
    dim: int = 96
    heads: int = 4
    ff_mult: int = 2
    kernel_size: int = 15
    encoder_layers: int = 2
    head_layers: int = 2  # Conformer blocks on the 12.5 Hz codes
    upsampled_layers: int = 1  # Conformer blocks after upsampling, at 12.5 * upsample Hz
    upsample: int = 4
    head_attention: bool = True  # False: the head sees only head_kernel_size tokens around each position
    head_kernel_size: int = 15
    fsq_levels: list[int] = dataclasses.field(default_factory=lambda: [8, 8, 8, 6, 5])
    vocab_size: int = 32  # CTC units incl. blank; the node sets it from its alphabet
    num_speakers: int = 0  # > 0 builds the speaker-adversarial branch on the codes
    aux_ctc: bool = False  # auxiliary CTC head on the 25 Hz encoder (training aid; the node sets it)
    aux_vocab_size: int = 0  # its units (phonemes); 0: the characters of the main head
    dropout: float = 0.0
    freq_masks: int = 1  # SpecAugment (training only): masks of up to freq_width mel bins
    freq_width: int = 10
    time_masks: int = 0  # ... and masks of up to time_width frames
    time_width: int = 25


def _strided(x: torch.Tensor, lengths: torch.Tensor, conv: nn.Conv1d) -> tuple[torch.Tensor, torch.Tensor]:
    """Stride-2 conv over x [B, C, T] with padding zeroed first; out length ceil(T / 2)."""
    x = conv(x * length_mask(lengths, x.shape[-1])[:, None, :].to(x.dtype))
    return x, (lengths + 1) // 2


class ContentNet(nn.Module):
    def __init__(self, cfg: ContentNetConfig):
        super().__init__()
        self.cfg = cfg
        self.frontend = LogMel(n_mels=cfg.n_mels)
        self.sub1 = nn.Conv1d(cfg.n_mels, cfg.dim, 3, stride=2, padding=1)
        self.sub2 = nn.Conv1d(cfg.dim, cfg.dim, 3, stride=2, padding=1)
        stack = dict(heads=cfg.heads, ff_mult=cfg.ff_mult, kernel_size=cfg.kernel_size, dropout=cfg.dropout)
        self.encoder = ConformerStack(cfg.dim, cfg.encoder_layers, **stack)
        self.pool = nn.Conv1d(cfg.dim, cfg.dim, 3, stride=2, padding=1)
        self.latent_norm = nn.LayerNorm(cfg.dim)
        self.fsq = FSQ(cfg.fsq_levels)
        self.to_latent = nn.Linear(cfg.dim, self.fsq.dim)
        self.from_codes = nn.Linear(self.fsq.dim, cfg.dim)
        head = dict(stack, kernel_size=cfg.head_kernel_size, attention=cfg.head_attention)
        self.head = ConformerStack(cfg.dim, cfg.head_layers, **head)
        self.upsampler = nn.ConvTranspose1d(cfg.dim, cfg.dim, cfg.upsample, stride=cfg.upsample)
        self.upsampled = ConformerStack(cfg.dim, cfg.upsampled_layers, **head)
        self.to_chars = nn.Linear(cfg.dim, cfg.vocab_size)
        self.adversary = SpeakerAdversary(self.fsq.dim, cfg.num_speakers) if cfg.num_speakers > 0 else None
        # Two outputs per 25 Hz frame: Mandarin phonemes with tones run ~25-30 units/s.
        self.aux_chars = nn.Linear(cfg.dim, 2 * (cfg.aux_vocab_size or cfg.vocab_size)) if cfg.aux_ctc else None

    @property
    def codebook_size(self) -> int:
        return self.fsq.codebook_size

    def token_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Tokens for waveforms of `lengths` samples: ceil(mel frames / 8), i.e. 12.5 per second."""
        frames = self.frontend.frame_lengths(lengths)
        return (((frames + 1) // 2 + 1) // 2 + 1) // 2

    def _spec_augment(self, feats: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        feats = feats.clone()
        for i, n in enumerate(frames.tolist()):
            for _ in range(self.cfg.freq_masks):
                width = int(torch.randint(0, self.cfg.freq_width + 1, ()))
                start = int(torch.randint(0, max(1, feats.shape[1] - width), ()))
                feats[i, start : start + width, :] = 0.0
            for _ in range(self.cfg.time_masks):
                width = min(int(torch.randint(0, self.cfg.time_width + 1, ())), n // 5)
                start = int(torch.randint(0, max(1, n - width), ()))
                feats[i, :, start : start + width] = 0.0
        return feats

    def features(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Continuous encoder features at 25 Hz: wav [B, T] -> ([B, F25, dim], lengths [B]).

        The last layer before pooling and quantisation, trained for recognition: what a 50 Hz
        semantic tokenizer (codec helper) can quantise after repeating each frame twice."""
        feats, frames = self.frontend(wav, lengths)
        mask = length_mask(frames, feats.shape[-1])[:, None, :].to(feats.dtype)
        count = mask.sum(-1, keepdim=True).clamp_min(1)
        mean = (feats * mask).sum(-1, keepdim=True) / count
        var = (((feats - mean) * mask) ** 2).sum(-1, keepdim=True) / count
        feats = (feats - mean) / (var + 1e-5).sqrt() * mask
        if self.training and (self.cfg.freq_masks or self.cfg.time_masks):
            feats = self._spec_augment(feats, frames)
        x, n = _strided(feats, frames, self.sub1)
        x, n = _strided(F.gelu(x), n, self.sub2)
        x = self.encoder(F.gelu(x).transpose(1, 2), length_mask(n, x.shape[-1]))
        return x, n

    def latents(self, x: torch.Tensor, n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """25 Hz features [B, F, dim] -> pre-quantisation latents [B, N, fsq_dim] at 12.5 Hz."""
        x, n = _strided(x.transpose(1, 2), n, self.pool)
        return self.to_latent(self.latent_norm(x.transpose(1, 2))), n

    def quantize(self, x: torch.Tensor, n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """25 Hz features [B, F, dim] -> (codes [B, N, fsq_dim], ids [B, N], token lengths [B])."""
        z, n = self.latents(x, n)
        codes, ids = self.fsq(z)
        return codes, ids, n

    @staticmethod
    def latent_excess(z: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        """Mean squared excess of |z| over LATENT_RANGE on valid frames (0 inside the range)."""
        mask = length_mask(n, z.shape[1])
        return (F.relu(z.abs() - LATENT_RANGE) ** 2)[mask].mean()

    def encode(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """wav [B, T] -> (codes [B, N, fsq_dim], ids [B, N], token lengths [B]); 12.5 tokens/s.
        Positions past an item's length hold padding and must be ignored."""
        return self.quantize(*self.features(wav, lengths))

    def decode_codes(self, codes: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """codes [B, N, fsq_dim] -> (CTC log-probabilities [B, N * upsample, vocab], lengths)."""
        mask = length_mask(lengths, codes.shape[1])
        x = self.head(self.from_codes(codes) * mask[..., None].to(codes.dtype), mask)
        x = self.upsampler(x.transpose(1, 2)).transpose(1, 2)
        up = lengths * self.cfg.upsample
        x = self.upsampled(x, length_mask(up, x.shape[1]))
        return self.to_chars(x).log_softmax(dim=-1), up

    def tokens_to_log_probs(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Recognise from token ids alone (what the Translator and a graph pass around)."""
        safe = ids.masked_fill(~length_mask(lengths, ids.shape[1]), 0)
        return self.decode_codes(self.fsq.indices_to_codes(safe), lengths)

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        feats, feat_lengths = self.features(wav, lengths)
        z, n = self.latents(feats, feat_lengths)
        codes, ids = self.fsq(z)
        log_probs, frames = self.decode_codes(codes, n)
        out = {"codes": codes, "ids": ids, "token_lengths": n, "log_probs": log_probs, "frame_lengths": frames,
               "latent_excess": self.latent_excess(z, n)}
        if self.aux_chars is not None:
            b, t, _ = feats.shape
            aux = self.aux_chars(feats).view(b, 2 * t, -1).log_softmax(dim=-1)
            out.update(aux_log_probs=aux, aux_lengths=2 * feat_lengths)
        return out
