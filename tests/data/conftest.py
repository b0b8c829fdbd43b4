"""Fixtures for the corpus builder tests: a tone backend with known durations, and one small
espeak-ng corpus shared by the tests that need real rendered audio."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from dragoman.nodes.data.tts import TTSBackend
from dragoman.nodes.data.voices import Prosody, Speaker

HAVE_ESPEAK = shutil.which("espeak-ng") is not None
needs_espeak = pytest.mark.skipif(not HAVE_ESPEAK, reason="espeak-ng not installed (make setup installs it)")


class ToneBackend(TTSBackend):
    """A tone whose length is known from the text: `seconds_per_unit` per Han character (zh) or
    word (en), padded with `pad` seconds of silence on both sides. Lets filter tests construct
    exact duration ratios."""

    name = "tone"
    sample_rate = 16000

    def __init__(self, seconds_per_unit: float = 0.25, pad: float = 0.1, fail_after: int | None = None,
                 zh_scale: float = 1.0):
        self.seconds_per_unit, self.pad, self.fail_after, self.zh_scale = seconds_per_unit, pad, fail_after, zh_scale
        self.calls = 0

    def check(self, speakers: list[Speaker]) -> None:
        pass

    @staticmethod
    def units(text: str, lang: str) -> int:
        return sum("\u4e00" <= c <= "\u9fff" for c in text) if lang == "zh" else len(text.split())

    def synthesize(self, text: str, lang: str, speaker: Speaker, prosody: Prosody) -> np.ndarray:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt  # a crash in the middle of a build
        scale = self.zh_scale if lang == "zh" else 1.0
        n = int(round(self.units(text, lang) * self.seconds_per_unit * scale * self.sample_rate))
        tone = 0.3 * np.sin(2 * np.pi * 150 * np.arange(n) / self.sample_rate)
        pad = np.zeros(int(self.pad * self.sample_rate))
        return np.concatenate([pad, tone, pad]).astype(np.float32)

    def settings(self, lang: str, speaker: Speaker, prosody: Prosody) -> dict:
        return {"backend": self.name, "speaker": speaker.name, "prosody": prosody.as_dict()}


@pytest.fixture(scope="session")
def espeak_corpus(tmp_path_factory):
    """12 pairs over all four splits, rendered once by espeak-ng (about 2 s of CPU)."""
    if not HAVE_ESPEAK:
        pytest.skip("espeak-ng not installed (make setup installs it)")
    from dragoman.nodes.data.build import build_corpus

    out = tmp_path_factory.mktemp("corpus")
    proportions = {"train": 0.5, "dev": 0.17, "test": 0.17, "test_unseen_speakers": 0.16}
    report = build_corpus(out, 12, seed=3, jobs=1, proportions=proportions, progress=False)
    return out, report, proportions
