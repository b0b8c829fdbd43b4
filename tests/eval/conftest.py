"""Audio made in the test (harmonic tones with known pitch contours) and a run-manifest writer."""
import json

import numpy as np
import pytest

SR = 16_000


def harmonic_tone(f0: np.ndarray, n_harmonics: int = 10, level: float = 0.3, ramp_s: float = 0.02) -> np.ndarray:
    """A voiced-speech stand-in: harmonics at 1/k amplitude following the F0 curve (Hz per sample),
    with short fade in/out."""
    phase = 2 * np.pi * np.cumsum(f0) / SR
    y = sum(np.sin(k * phase) / k for k in range(1, n_harmonics + 1))
    y = level * y / np.abs(y).max()
    ramp = np.minimum(1.0, np.minimum(np.arange(len(y)), np.arange(len(y))[::-1]) / (ramp_s * SR))
    return (y * ramp).astype(np.float32)


def glide(seconds: float, base: float, semitones: float, cycles: float, phase: float = 0.0) -> np.ndarray:
    """F0 in Hz per sample: `base` with a sinusoidal excursion of +-`semitones`."""
    t = np.arange(int(seconds * SR)) / SR
    return base * 2 ** (semitones / 12 * np.sin(2 * np.pi * cycles * t / seconds + phase))


@pytest.fixture
def tone():
    return harmonic_tone


@pytest.fixture
def f0_glide():
    return glide


@pytest.fixture
def write_run():
    """write_run(path, rows) writes a run manifest; a str row is written verbatim (bad lines)."""

    def write(path, rows):
        with open(path, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write((row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)) + "\n")
        return path

    return write
