"""Prosody transfer: duration compliance (SLC-p) and correlation of F0 and energy contours.

SLC-p (UniSS, DESIGN §9) is the share of utterances whose output duration is within p of the
source's: |dur_out / dur_src - 1| <= p, for p = 0.2 and 0.4. The scorer reads durations from
the audio files' headers (frames / sample rate), never from what the run says it wrote.

For F0 and energy: source and output speak different languages with different words, so frames
cannot be aligned one to one; what can be compared is the shape over the utterance (rising at
the end, loud in the middle, ...). Both contours are cut to their speech region (first to last frame within
`SPEECH_RANGE_DB` of the loudest frame, so leading/trailing silence of different lengths does
not shift the shapes), then resampled to the shorter of the two lengths by nearest frame (which
keeps voicing decisions intact), and correlated:
- F0: over frames voiced in both, on a semitone scale (12 log2 f0: equal musical intervals count
  equally at any register, so a female source and male output are compared fairly);
- energy: frame RMS in dB over all frames of the region.
A correlation needs at least `MIN_FRAMES` frames and some variation in both contours
(`MIN_STD`); otherwise it is undefined (None), never a made-up 0.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from dragoman.nodes.eval.pitch import PitchTrack, frame_energy_db, track_pitch

SLC_THRESHOLDS = (0.2, 0.4)
# Ratios are quotients of sample counts; 1e-9 keeps a ratio of exactly 1.2 (19200/16000) inside
# p = 0.2 despite binary rounding (1.2 - 1 = 0.19999999999999996 but 1 - 0.8 may round up).
_SLC_EPS = 1e-9

SPEECH_RANGE_DB = 40.0
# 10 frames = 0.1 s of common voiced speech: fewer and one glitch decides the correlation.
MIN_FRAMES = 10
# A contour flatter than this has no shape to compare: correlating it would correlate tracker
# jitter (about 1 cent on a steady synthetic tone) or frame-level noise.
MIN_STD = {"f0": 0.1, "energy": 0.5}  # semitones, dB


def within(ratio: float, p: float) -> bool:
    """Is a duration ratio dur_out / dur_src within p of 1 (boundary included)?"""
    return abs(ratio - 1.0) <= p + _SLC_EPS


def slc(ratios: Sequence[float], p: float) -> float | None:
    """SLC-p: share of `ratios` within p of 1; None for no utterances."""
    if not ratios:
        return None
    return sum(within(r, p) for r in ratios) / len(ratios)


@dataclasses.dataclass
class Contours:
    """Pitch track + energy of one utterance, on the same 10 ms frames."""

    pitch: PitchTrack
    energy_db: np.ndarray

    @classmethod
    def of(cls, wav, sample_rate: int = 16000) -> "Contours":
        pitch = track_pitch(wav, sample_rate)
        energy = frame_energy_db(wav, sample_rate, pitch.hop_s)[: len(pitch.f0)]
        return cls(pitch, energy)

    def speech_region(self) -> slice:
        loud = np.flatnonzero(self.energy_db > self.energy_db.max() - SPEECH_RANGE_DB)
        return slice(int(loud[0]), int(loud[-1]) + 1) if len(loud) else slice(0, 0)


def pearson(a: np.ndarray, b: np.ndarray, min_std: float = 1e-9) -> float | None:
    """Pearson r, or None when the inputs are shorter than MIN_FRAMES or either one's standard
    deviation is under `min_std`."""
    if len(a) < MIN_FRAMES or len(a) != len(b):
        return None
    a = a - a.mean()
    b = b - b.mean()
    if a.std() < min_std or b.std() < min_std:
        return None
    return float(np.clip(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)), -1.0, 1.0))


def _nearest(n_from: int, n_to: int) -> np.ndarray:
    """Indices mapping n_to evenly spaced points onto n_from frames (time normalisation)."""
    return np.minimum(((np.arange(n_to) + 0.5) * n_from / n_to).astype(int), n_from - 1)


def contour_correlations(src: Contours, out: Contours) -> tuple[float | None, float | None]:
    """(f0_corr, energy_corr) between a source and an output utterance."""
    rs, ro = src.speech_region(), out.speech_region()
    n_s, n_o = rs.stop - rs.start, ro.stop - ro.start
    n = min(n_s, n_o)
    if n < MIN_FRAMES:
        return None, None
    i_s = rs.start + _nearest(n_s, n)
    i_o = ro.start + _nearest(n_o, n)
    energy_r = pearson(src.energy_db[i_s], out.energy_db[i_o], MIN_STD["energy"])
    both = src.pitch.voiced[i_s] & out.pitch.voiced[i_o]
    f0_r = None
    if both.sum() >= MIN_FRAMES:
        semis_s = 12 * np.log2(src.pitch.f0[i_s][both])
        semis_o = 12 * np.log2(out.pitch.f0[i_o][both])
        f0_r = pearson(semis_s, semis_o, MIN_STD["f0"])
    return f0_r, energy_r
