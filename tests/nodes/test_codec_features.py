"""Codec analysis and the weightless harmonic-plus-noise synthesiser, against known signals."""
import math

import numpy as np
import pytest
import torch

from dragoman.nodes.eval.pitch import track_pitch
from dragoman.nodes.modules.codec_features import (
    FRAME_HOP, EnvelopeMel, pad_to_tokens, pitch_frames, prosody_tokens_features, tokens_for_samples,
)
from dragoman.nodes.modules.harmonic_synth import HarmonicNoiseSynth

SR = 16000


def harmonic_tone(f0_hz: np.ndarray, seconds: float, amp_of_k=lambda k: 0.3 / k) -> torch.Tensor:
    """Sum of harmonics under a 1/k envelope following a per-sample F0 contour."""
    n = int(seconds * SR)
    f0 = np.interp(np.arange(n), np.linspace(0, n - 1, len(f0_hz)), f0_hz)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    wav = sum(amp_of_k(k) * np.sin(k * phase + 0.3 * k * k) * (k * f0 < SR / 2 * 0.95) for k in range(1, int(SR / 2 / f0.min()) + 1))
    return torch.from_numpy(wav).float()


@pytest.mark.parametrize("n,tokens", [(1, 1), (319, 1), (320, 1), (321, 2), (16000, 50), (16001, 51)])
def test_token_count_is_ceil_of_samples_over_320(n, tokens):
    assert tokens_for_samples(n) == tokens
    assert pad_to_tokens(torch.zeros(n)).shape[-1] == tokens * 320


def test_envelope_mel_has_two_frames_per_token_and_no_empty_band():
    mel = EnvelopeMel(80)
    assert bool((mel.fbank.sum(0) > 0.99).all())
    out = mel(pad_to_tokens(torch.randn(1, 5000) * 0.1))
    assert out.shape == (1, 80, 2 * tokens_for_samples(5000))


@pytest.mark.parametrize("f0", [110.0, 220.0])
def test_synthesis_reproduces_a_harmonic_signal_spectrum_and_pitch(f0):
    """Analyse a steady harmonic tone, resynthesise it from (envelope, F0, voicing) alone: the
    re-analysed log-mel is within 0.2 nat (< 1 dB) in every band, 0.03 on average, and the pitch is the same. The top
    two bands (above 7.6 kHz) are left out: they straddle the synthesiser's harmonic cut-off."""
    wav = pad_to_tokens(harmonic_tone(np.array([f0, f0]), 1.0))
    synth = HarmonicNoiseSynth(80)
    log_mel = synth.envelope(wav[None])[0]
    frames = log_mel.shape[-1]
    out = synth(log_mel, torch.full((frames,), math.log(f0)), torch.ones(frames))
    assert out.shape == wav.shape
    again = synth.envelope(out[None])[0]
    band_bias = (again - log_mel)[:78, 10:-10].mean(-1)
    assert float(band_bias.abs().max()) < 0.2
    assert float(band_bias.abs().mean()) < 0.03
    track = track_pitch(out.numpy(), SR)
    assert abs(np.median(track.f0[track.voiced]) - f0) < 1.0
    assert float(out.pow(2).mean().sqrt()) == pytest.approx(float(wav.pow(2).mean().sqrt()), rel=0.03)


def test_noise_part_reproduces_a_coloured_noise_spectrum():
    """Stationary low-passed noise, described by its time-averaged envelope (what a regression
    decoder predicts), is resynthesised at the same power in every band group (within 10 %)."""
    gen = torch.Generator().manual_seed(0)
    white = torch.randn(48000, generator=gen).numpy()
    coloured = np.zeros_like(white)
    for i in range(1, len(white)):
        coloured[i] = white[i] + 0.8 * coloured[i - 1]
    wav = torch.from_numpy(coloured * 0.02).float()
    synth = HarmonicNoiseSynth(80)
    frames = synth.envelope(wav[None])[0]
    envelope = frames.exp().mean(-1, keepdim=True).log().expand_as(frames)
    out = synth(envelope, torch.full((frames.shape[-1],), math.log(100.0)), torch.zeros(frames.shape[-1]))
    again = synth.envelope(out[None])[0].exp().mean(-1)
    ratio = again.reshape(8, 10).sum(1) / frames.exp().mean(-1).reshape(8, 10).sum(1)
    assert float((ratio - 1).abs().max()) < 0.1
    assert float(out.std()) == pytest.approx(float(wav.std()), rel=0.05)


def test_synthesis_follows_a_gliding_pitch_contour():
    f0 = np.linspace(100, 200, 50)
    wav = pad_to_tokens(harmonic_tone(f0, 1.0))
    synth = HarmonicNoiseSynth(80)
    log_mel = synth.envelope(wav[None])[0]
    log_f0, voiced = pitch_frames(wav, log_mel.shape[-1])
    assert voiced[10:-10].all()
    out = synth(log_mel, log_f0, voiced.float())
    a, b = track_pitch(wav.numpy(), SR), track_pitch(out.numpy(), SR)
    both = a.voiced & b.voiced
    assert both.sum() > 80
    assert np.corrcoef(a.f0[both], b.f0[both])[0, 1] > 0.99


def _resynthesised(synth: HarmonicNoiseSynth, wav: torch.Tensor, f0: float, voicing: float) -> torch.Tensor:
    log_mel = synth.envelope(wav[None])[0]
    frames = log_mel.shape[-1]
    return synth(log_mel, torch.full((frames,), math.log(f0)), torch.full((frames,), voicing))


def _burst_energy_near(win_length: int, tolerance_s: float) -> float:
    """A 5 ms noise burst (a plosive release) in 1 s of silence, resynthesised from its own
    envelope as noise: the share of the output energy within `tolerance_s` of the burst."""
    wav = torch.zeros(16000)
    gen = torch.Generator().manual_seed(1)
    wav[8000:8080] = 0.3 * torch.randn(80, generator=gen)
    out = _resynthesised(HarmonicNoiseSynth(80, win_length=win_length), wav, 100.0, 0.0)
    near = slice(8040 - int(tolerance_s * SR), 8040 + int(tolerance_s * SR))
    return float(out[near].pow(2).sum() / out.pow(2).sum())


def test_a_short_burst_stays_short():
    """Consonant bursts survive the default 20 ms analysis window (99 % of the energy within
    10 ms of the burst); a 40 ms window spreads them (87 %), which the recogniser hears as lost
    consonants (copy-synthesis CER 0.027 vs 0.074, `codec_features.WIN`)."""
    assert _burst_energy_near(320, 0.010) > 0.97
    assert _burst_energy_near(640, 0.010) < 0.92


def test_digital_silence_is_played_as_zeros_and_quiet_sound_is_not():
    """Silence between two tones analyses to the envelope floor and comes back as exact zeros
    (the recordings' own silence), away from the tones' edges; -60 dBFS noise stays audible.
    Without the gate the same silence is rendered as hiss."""
    tone = harmonic_tone(np.array([150.0, 150.0]), 0.3)
    wav = torch.cat([tone, torch.zeros(8000), tone])
    gap = slice(4800 + 800, 4800 + 8000 - 800)
    out = _resynthesised(HarmonicNoiseSynth(80), wav, 150.0, 1.0)
    assert bool((out[gap] == 0).all())
    assert float(out[:4000].pow(2).mean()) > 0.5 * float(tone[:4000].pow(2).mean())
    assert float(_resynthesised(HarmonicNoiseSynth(80, silence_level=None), wav, 150.0, 1.0)[gap].abs().max()) > 0
    hiss = 1e-3 * torch.randn(16000, generator=torch.Generator().manual_seed(2))
    assert float(_resynthesised(HarmonicNoiseSynth(80), hiss, 100.0, 0.0).std()) == pytest.approx(1e-3, rel=0.1)


def test_prosody_features_drop_the_speakers_absolute_pitch():
    """The same contour an octave up (a different voice) gives the same z-scored F0 track."""
    contour = np.array([120, 150, 110, 170, 130, 125], dtype=float)
    low = prosody_tokens_features(pad_to_tokens(harmonic_tone(contour, 1.2)), 60)
    high = prosody_tokens_features(pad_to_tokens(harmonic_tone(contour * 2, 1.2)), 60)
    assert low.shape == (3, 60)
    voiced = (low[1] == 1) & (high[1] == 1)
    assert int(voiced.sum()) > 50
    assert float((low[0, voiced] - high[0, voiced]).abs().mean()) < 0.05
    assert float(low[0, voiced].std()) > 0.5  # the contour itself is kept


def test_frame_centres_line_up_with_the_pitch_tracker():
    """Frame i of the decoder grid is centred on sample 160 i, as the YIN tracker's frame i."""
    wav = pad_to_tokens(harmonic_tone(np.array([150.0, 150.0]), 0.5))
    log_f0, voiced = pitch_frames(wav, wav.shape[-1] // FRAME_HOP)
    track = track_pitch(wav.numpy(), SR)
    n = len(log_f0)
    assert np.array_equal(voiced.numpy(), track.voiced[:n])
