"""YIN pitch tracker against the known F0 of synthetic tones; F0/energy contour correlation:
1 for identical audio, high for a time-stretched copy, near 0 for unrelated contours."""
import numpy as np
import pytest
import torch

from dragoman.nodes.eval.pitch import frame_energy_db, track_pitch
from dragoman.nodes.eval.prosody import Contours, contour_correlations, pearson

SR = 16_000


def _cents_error(track, true_f0_at):
    ref = true_f0_at(track.times)
    v = track.voiced
    return 1200 * np.abs(np.log2(track.f0[v] / ref[v]))


@pytest.mark.parametrize("f0", [70.0, 110.0, 196.0, 310.0, 470.0])
def test_constant_tones_within_a_few_cents(tone, f0):
    track = track_pitch(tone(np.full(SR, f0)))
    cents = _cents_error(track, lambda t: np.full_like(t, f0))
    assert track.voiced.mean() > 0.95
    assert np.median(cents) < 2.0
    assert np.max(cents) < 10.0  # the first/last frames see the fade and the zero padding


@pytest.mark.parametrize("base", [100.0, 160.0, 240.0])
def test_gliding_tones_in_noise(tone, base):
    """+-5 semitones, 1.5 cycles over 3 s, white noise at 20 dB SNR."""
    seconds, semis, cycles = 3.0, 5.0, 1.5
    t = np.arange(int(seconds * SR)) / SR
    true = lambda tt: base * 2 ** (semis / 12 * np.sin(2 * np.pi * cycles * tt / seconds))  # noqa: E731
    clean = tone(true(t))
    noisy = clean + np.random.default_rng(0).normal(size=len(clean)) * clean.std() / 10
    track = track_pitch(torch.from_numpy(noisy.astype(np.float32)))
    cents = _cents_error(track, true)
    assert track.voiced.mean() > 0.95
    assert np.median(cents) < 10.0
    assert np.mean(cents > 50) < 0.01  # no octave errors


def test_noise_and_silence_are_unvoiced(tone):
    rng = np.random.default_rng(1)
    assert track_pitch(0.1 * rng.normal(size=2 * SR)).voiced.mean() < 0.02
    assert not track_pitch(np.zeros(SR)).voiced.any()
    # a tone with a silent gap: the gap is unvoiced, the tone voiced
    y = np.concatenate([tone(np.full(SR, 150.0)), np.zeros(SR, np.float32), tone(np.full(SR, 150.0))])
    track = track_pitch(y)
    gap = (track.times > 1.1) & (track.times < 1.9)
    assert not track.voiced[gap].any()
    assert track.voiced[(track.times > 0.1) & (track.times < 0.9)].all()


def test_frames_and_energy_share_one_grid(tone):
    y = tone(np.full(int(1.234 * SR), 200.0))
    track = track_pitch(y)
    energy = frame_energy_db(y)
    assert len(track.f0) == len(energy) == int(np.ceil(len(y) / 160))
    louder = frame_energy_db(4 * y)
    assert np.median(louder - energy) == pytest.approx(20 * np.log10(4), abs=0.01)


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        track_pitch(np.array([0.0, np.nan, 1.0]))
    with pytest.raises(ValueError):
        track_pitch(np.zeros(SR), fmin=400, fmax=300)


def _intonated(tone, f0_glide, seconds, base, phase, syllables=4.0, seed=0):
    """Tone with an F0 contour and a syllable-like loudness envelope."""
    f0 = f0_glide(seconds, base, 4.0, 1.0, phase)
    t = np.arange(len(f0)) / SR
    env = 0.6 - 0.4 * np.cos(2 * np.pi * syllables * t / seconds + seed)
    return tone(f0) * env.astype(np.float32)


def test_identical_audio_correlates_fully(tone, f0_glide):
    y = _intonated(tone, f0_glide, 2.5, 150.0, 0.3)
    f0_r, energy_r = contour_correlations(Contours.of(y), Contours.of(y))
    assert f0_r > 0.99 and energy_r > 0.99


def test_time_normalisation_matches_a_stretched_copy(tone, f0_glide):
    """The same contour spoken 1.4x slower, one octave lower, with extra leading silence."""
    src = _intonated(tone, f0_glide, 2.0, 220.0, 0.0)
    out = _intonated(tone, f0_glide, 2.8, 110.0, 0.0)
    out = np.concatenate([np.zeros(SR // 2, np.float32), out])
    f0_r, energy_r = contour_correlations(Contours.of(src), Contours.of(out))
    assert f0_r > 0.95 and energy_r > 0.9


def test_unrelated_contours_correlate_near_zero(tone, f0_glide):
    # sine vs cosine over the utterance: orthogonal by construction
    a = tone(f0_glide(3.0, 150.0, 4.0, 1.0, 0.0))
    b = tone(f0_glide(3.0, 150.0, 4.0, 1.0, np.pi / 2))
    f0_r, _ = contour_correlations(Contours.of(a), Contours.of(b))
    assert abs(f0_r) < 0.1
    # independent random smooth contours: mean correlation near 0 over many pairs
    rng = np.random.default_rng(0)

    def random_contour():
        t = np.arange(2 * SR) / SR
        semis = sum(rng.normal() * np.sin(2 * np.pi * k * t / 2.0 + rng.uniform(0, 6)) for k in range(1, 5))
        return tone(140.0 * 2 ** (semis / 12))

    rs = [contour_correlations(Contours.of(random_contour()), Contours.of(random_contour()))[0] for _ in range(16)]
    assert abs(np.mean(rs)) < 0.15
    assert np.mean(np.abs(rs)) < 0.5


def test_undefined_correlations_are_none(tone):
    flat = tone(np.full(SR, 150.0))  # constant pitch: no intonation to correlate
    assert contour_correlations(Contours.of(flat), Contours.of(flat))[0] is None
    steady = np.sin(2 * np.pi * 150.0 * np.arange(SR) / SR)  # no fades either: flat energy
    assert contour_correlations(Contours.of(steady), Contours.of(steady)) == (None, None)
    noise = (0.1 * np.random.default_rng(2).normal(size=SR)).astype(np.float32)
    f0_r, energy_r = contour_correlations(Contours.of(flat), Contours.of(noise))
    assert f0_r is None  # nothing voiced in both
    assert energy_r is None or -1 <= energy_r <= 1
    assert pearson(np.ones(20), np.arange(20.0)) is None
    assert pearson(np.arange(5.0), np.arange(5.0)) is None  # too short
    assert pearson(np.arange(20.0), -np.arange(20.0)) == pytest.approx(-1.0)
