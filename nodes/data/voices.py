"""Speakers and emotions of the synthetic corpus.

A speaker is one fixed voice used for BOTH languages, so that it keeps its identity across the
pair as UniST's re-synthesis with the source speaker's voice does. An emotion is a prosody profile
(pitch level and range, rate, volume: the cues the EmotionTokenizer reads) applied on top of the
speaker; each pair draws a seeded jitter around the profile, shared by its two sides, so that the
target copies the source's exact style.

Measured on espeak-ng 1.51 (en-us and cmn-latn-pinyin, 40 grammar sentences): SSML pitch +25 %
raises the median F0 by ~20 %, range -45 % narrows the 10-90 % F0 spread ~2x, volume +60 % clips
at amplitude 100 (hence amplitudes of 65-70 and angry at +35 %).
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import asdict, dataclass

from dragoman.nodes.errors import DragomanError


@dataclass(frozen=True)
class Speaker:
    """One voice. Fields are espeak-ng's knobs; another backend maps `name` to its own voice."""

    name: str
    gender: str
    variant: str  # espeak-ng voice variant (formants, breathiness): m3, f2, klatt, ...
    pitch: int  # base pitch, espeak-ng -p (0-99)
    range: int  # habitual pitch range, % relative to espeak-ng's default (SSML prosody range)
    rate: int  # English words per minute, espeak-ng -s (Mandarin is scaled by the backend)
    amplitude: int  # espeak-ng -a (0-200)


@dataclass(frozen=True)
class Emotion:
    """A prosody profile as relative SSML changes in percent, and the jitter drawn around it."""

    name: str
    pitch: float
    range: float
    rate: float
    volume: float
    jitter: tuple[float, float, float, float] = (4.0, 10.0, 5.0, 5.0)


@dataclass(frozen=True)
class Prosody:
    """An emotion after jitter: what one pair is rendered with."""

    emotion: str
    pitch: float
    range: float
    rate: float
    volume: float

    def as_dict(self) -> dict:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in asdict(self).items()}


SPEAKERS = {s.name: s for s in [
    # Base pitches spread the voices over ~75-120 Hz (m) and ~170-240 Hz (f) mean F0.
    Speaker("s01", "m", "m1", 46, 0, 165, 70),
    Speaker("s02", "f", "f2", 70, 10, 160, 70),
    Speaker("s03", "m", "m3", 58, 20, 175, 65),
    Speaker("s04", "f", "f4", 46, -10, 170, 70),
    Speaker("s05", "m", "klatt", 50, 10, 155, 70),
    Speaker("s06", "f", "f1", 80, 20, 180, 65),
    Speaker("s07", "m", "m7", 24, -20, 160, 70),
    Speaker("s08", "f", "f3", 54, 0, 165, 70),
    Speaker("s09", "m", "m5", 66, 30, 170, 65),
    Speaker("s10", "f", "steph", 62, -10, 175, 70),
    # Held out of training by default (test_unseen_speakers): one male, one female voice.
    Speaker("s11", "m", "m2", 50, 10, 168, 70),
    Speaker("s12", "f", "f5", 60, 0, 162, 70),
]}
DEFAULT_UNSEEN_SPEAKERS = ("s11", "s12")

EMOTIONS = {e.name: e for e in [
    Emotion("neutral", 0.0, 0.0, 0.0, 0.0),
    Emotion("happy", 25.0, 60.0, 10.0, 10.0),
    Emotion("sad", -15.0, -45.0, -20.0, -30.0),
    Emotion("angry", 8.0, 35.0, 18.0, 35.0),
]}


def get_speakers(names) -> list[Speaker]:
    """Speakers by name, or a one-line error naming the unknown one and the known ones."""
    out = []
    for name in names:
        if name not in SPEAKERS:
            raise DragomanError(f"unknown speaker {name!r} (known: {', '.join(SPEAKERS)})")
        out.append(SPEAKERS[name])
    return out


def get_emotions(names) -> list[Emotion]:
    out = []
    for name in names:
        if name not in EMOTIONS:
            raise DragomanError(f"unknown emotion {name!r} (known: {', '.join(EMOTIONS)})")
        out.append(EMOTIONS[name])
    return out


def item_rng(seed: int, key: str) -> random.Random:
    """An rng that depends only on (seed, key): the same draw whichever worker or run asks."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def jittered(emotion: Emotion, rng: random.Random) -> Prosody:
    jp, jr, js, jv = emotion.jitter
    return Prosody(
        emotion.name,
        emotion.pitch + rng.uniform(-jp, jp),
        emotion.range + rng.uniform(-jr, jr),
        emotion.rate + rng.uniform(-js, js),
        emotion.volume + rng.uniform(-jv, jv),
    )
