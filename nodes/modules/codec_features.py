"""Frame analysis shared by the codec nodes (SemanticTokenizer, Decoder) and their training caches.

Time grid. Semantic tokens run at exactly 50 Hz: token j covers samples [320 j, 320 (j + 1)) of
16 kHz audio, so a clip of N samples has ceil(N / 320) tokens and the decoder writes 320 samples
per token (UniSS's BiCodec hop, UNISS_RELEASE item 13). Everything finer (the decoder's log-mel,
F0 and voicing) lives on 100 Hz frames, two per token, frame i centred on sample 160 i: the same
centres as the YIN tracker in `dragoman.nodes.eval.pitch`, so pitch targets and spectra line up.

Spectral envelope. `EnvelopeMel` averages (not sums) STFT power inside each mel band, so its value
is a power *per FFT bin*. That is the quantity a harmonic-plus-noise synthesiser needs: a
harmonic of amplitude A spreads A^2 * sr * sum(w^2) / (4 F0) of power per bin over the F0-wide
band around it (Parseval), and unit white noise has sum(w^2) per bin, so one envelope drives both
parts with no learned gain (see `dragoman.nodes.modules.harmonic_synth`).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

SAMPLE_RATE = 16_000
TOKEN_HOP = 320  # samples per semantic token: 50 Hz
FRAME_HOP = 160  # samples per analysis frame: 100 Hz, two frames per token
FRAMES_PER_TOKEN = TOKEN_HOP // FRAME_HOP
N_FFT = 1024
# 20 ms Hann analysis window. Copy synthesis (true envelope, F0 and voicing of 60 test lines
# through HarmonicNoiseSynth, scored by the ContentTokenizer's recogniser): CER 0.027 with 320
# samples, 0.046 with 480 and 0.074 with 640, against 0.031 on the recordings. A 40 ms window
# resolves harmonics but smears bursts and formant transitions over four frames; the band
# averages of the envelope do not need resolved harmonics (see `EnvelopeMel`).
WIN = 320
LOG_FLOOR = 1e-8


def tokens_for_samples(n_samples: int) -> int:
    """Number of 50 Hz tokens for a clip: ceil(n / 320)."""
    return -(-int(n_samples) // TOKEN_HOP)


def pad_to_tokens(wav: torch.Tensor) -> torch.Tensor:
    """Zero-pad the last axis to a whole number of tokens."""
    extra = tokens_for_samples(wav.shape[-1]) * TOKEN_HOP - wav.shape[-1]
    return nn.functional.pad(wav, (0, extra)) if extra else wav


class EnvelopeMel(nn.Module):
    """Waveform [B, N] (N a multiple of 160) -> log band-average power [B, n_mels, N / 160].

    HTK mel bands from 0 to 8 kHz; 80 bands are ~22 Hz apart at the bottom (three FFT bins), so
    none is empty. `to_linear` maps a log-mel back to power on the FFT bins by piecewise
    linear interpolation between band centres (the synthesiser's envelope).
    """

    def __init__(self, n_mels: int = 80, sample_rate: int = SAMPLE_RATE, win_length: int = WIN):
        super().__init__()
        import torchaudio

        if not FRAME_HOP <= win_length <= N_FFT:  # the synthesiser's overlap-add needs hop <= window
            raise ValueError(f"win_length {win_length} must be in [{FRAME_HOP}, {N_FFT}] samples")
        self.n_mels = n_mels
        self.win_length = win_length
        self.sample_rate = sample_rate
        n_freqs = N_FFT // 2 + 1
        fb = torchaudio.functional.melscale_fbanks(n_freqs, 0.0, sample_rate / 2, n_mels, sample_rate, norm=None, mel_scale="htk")
        self.register_buffer("fbank", fb / fb.sum(dim=0, keepdim=True), persistent=False)
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)
        mel_max = 2595.0 * math.log10(1.0 + (sample_rate / 2) / 700.0)
        mels = torch.linspace(0.0, mel_max, n_mels + 2)[1:-1]
        centres = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
        bins = torch.linspace(0.0, sample_rate / 2, n_freqs)
        self.register_buffer("to_linear_matrix", _interpolation_matrix(centres, bins), persistent=False)

    @property
    def window_power(self) -> float:
        """sum(w^2) of the analysis window: the per-bin power of unit white noise."""
        return float((self.window**2).sum())

    def stft(self, wav: torch.Tensor) -> torch.Tensor:
        return torch.stft(wav, N_FFT, FRAME_HOP, self.win_length, self.window, center=True, pad_mode="constant", return_complex=True)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        frames = wav.shape[-1] // FRAME_HOP
        power = self.stft(wav).abs().pow(2)[..., :frames]  # [B, n_freqs, frames]
        band = torch.einsum("bft,fm->bmt", power, self.fbank)
        return torch.log(band + LOG_FLOOR)

    def to_linear(self, log_mel: torch.Tensor) -> torch.Tensor:
        """[B, n_mels, F] log band power -> [B, n_freqs, F] power per FFT bin.

        Interpolated in the power domain: where bands are narrower than F0 the mel alternates
        between harmonic peaks and valleys, and a log-domain interpolation would pull the band
        mean towards the valleys (measured: 2.6 dB too quiet below 600 Hz for a 200 Hz voice)."""
        return torch.einsum("fm,bmt->bft", self.to_linear_matrix, log_mel.exp())


def _interpolation_matrix(centres: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """[len(freqs), len(centres)] weights of piecewise linear interpolation (flat beyond the ends)."""
    f = freqs.clamp(float(centres[0]), float(centres[-1]))
    hi = torch.searchsorted(centres, f).clamp(1, len(centres) - 1)
    lo = hi - 1
    frac = (f - centres[lo]) / (centres[hi] - centres[lo])
    matrix = torch.zeros(len(freqs), len(centres))
    rows = torch.arange(len(freqs))
    matrix[rows, lo] = 1.0 - frac
    matrix[rows, hi] += frac
    return matrix


def pitch_frames(wav: torch.Tensor, n_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """YIN F0 on the 100 Hz grid: (log F0 [n_frames] with unvoiced frames filled by the nearest
    voiced value, voiced [n_frames] bool). The tracker is the evaluation's (`eval.pitch`), so the
    decoder learns exactly the contour that `f0_corr` measures."""
    from dragoman.nodes.eval.pitch import track_pitch

    track = track_pitch(wav.detach().cpu().numpy(), SAMPLE_RATE)
    f0 = np.zeros(n_frames)
    voiced = np.zeros(n_frames, dtype=bool)
    n = min(n_frames, len(track.f0))
    f0[:n], voiced[:n] = track.f0[:n], track.voiced[:n]
    return torch.from_numpy(fill_unvoiced(np.log(np.maximum(f0, 1.0)), voiced)).float(), torch.from_numpy(voiced)


def decoder_targets(wav: torch.Tensor, envelope: EnvelopeMel) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What the Decoder learns to predict for a waveform [N]: (log-mel [n_mels, F], log F0 [F],
    voiced [F]) on 100 Hz frames, F = two per 50 Hz token of the zero-padded clip."""
    padded = pad_to_tokens(wav)
    log_f0, voiced = pitch_frames(padded, tokens_for_samples(wav.shape[-1]) * FRAMES_PER_TOKEN)
    return envelope(padded[None])[0], log_f0, voiced


def fill_unvoiced(values: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """Unvoiced entries take the value of the nearest voiced one (all unvoiced: log 100 Hz), so a
    contour has no jumps to zero that a regression head would have to reproduce."""
    if not voiced.any():
        return np.full_like(values, math.log(100.0))
    idx = np.flatnonzero(voiced)
    positions = np.arange(len(values))
    nearest = idx[np.clip(np.searchsorted(idx, positions), 0, len(idx) - 1)]
    left = idx[np.clip(np.searchsorted(idx, positions) - 1, 0, len(idx) - 1)]
    take = np.where(np.abs(left - positions) < np.abs(nearest - positions), left, nearest)
    return np.where(voiced, values, values[take])


def prosody_tokens_features(wav: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """Speaker-normalised prosody on the 50 Hz token grid: [3, n_tokens] =
    (log F0 z-scored over the utterance's voiced frames (0 when unvoiced), voicing share,
    frame energy in dB z-scored over the utterance).

    Z-scoring removes the speaker's absolute pitch and loudness, so tokens carry the contour and
    the emphasis but not who spoke: pitch level comes back from the speaker and emotion tokens."""
    from dragoman.nodes.eval.pitch import frame_energy_db

    n_frames = n_tokens * FRAMES_PER_TOKEN
    log_f0, voiced = pitch_frames(wav, n_frames)
    v = voiced.numpy()
    lf = log_f0.numpy().astype(np.float64)
    z_f0 = np.zeros(n_frames)
    if v.sum() >= 2:
        z_f0[v] = (lf[v] - lf[v].mean()) / max(lf[v].std(), 0.02)
    energy = np.full(n_frames, -100.0)
    e = frame_energy_db(wav.detach().cpu().numpy(), SAMPLE_RATE)[:n_frames]
    energy[: len(e)] = e
    z_energy = (energy - energy.mean()) / max(energy.std(), 1.0)
    frames = np.stack([z_f0, v.astype(np.float64), z_energy])  # [3, n_frames]
    return torch.from_numpy(frames.reshape(3, n_tokens, FRAMES_PER_TOKEN).mean(axis=-1)).float()
