"""The espeak-ng backend on real audio: emotions differ measurably, a speaker keeps its voice across
languages, and missing or unknown voices fail with one-line errors."""
from __future__ import annotations

import numpy as np
import pytest

from dragoman.nodes.data.filters import speech_duration
from dragoman.nodes.data.stats import voiced_f0
from dragoman.nodes.data.tts import EspeakBackend, parse_wav_bytes
from dragoman.nodes.data.voices import EMOTIONS, SPEAKERS, Prosody, Speaker
from dragoman.nodes.errors import DragomanError

from .conftest import needs_espeak

SENTENCE = {"en": "My mother bought three red apples at the market yesterday.",
            "zh": "我妈妈昨天在市场里买了三个红色的苹果。"}


def plain(emotion: str) -> Prosody:
    e = EMOTIONS[emotion]
    return Prosody(e.name, e.pitch, e.range, e.rate, e.volume)


def measure(wav: np.ndarray, rate: int) -> dict:
    speech = wav[np.abs(wav) > 0.01]
    return {"f0": float(np.median(voiced_f0(wav, rate))), "seconds": speech_duration(wav, rate),
            "rms": float(np.sqrt(np.mean(speech ** 2)))}


@pytest.fixture(scope="module")
def backend():
    return EspeakBackend()


@needs_espeak
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_emotion_profiles_differ_on_the_audio(backend, lang):
    speaker = SPEAKERS["s03"]
    m = {e: measure(backend.synthesize(SENTENCE[lang], lang, speaker, plain(e)), backend.sample_rate) for e in EMOTIONS}
    # Measured (s03, en | zh): F0 146 | 120 happy, 117 | 100 neutral, 99 | 90 sad Hz; speech 2.3 | 2.5 s
    # angry, 2.7 | 3.1 neutral, 3.4 | 4.0 sad; RMS 0.107 | 0.092 angry, 0.083 | 0.074 neutral.
    assert m["happy"]["f0"] > 1.05 * m["neutral"]["f0"] and m["neutral"]["f0"] > 1.05 * m["sad"]["f0"], m
    assert m["sad"]["seconds"] > 1.1 * m["neutral"]["seconds"] > 1.1 * 1.1 * m["angry"]["seconds"], m
    assert m["angry"]["rms"] > 1.02 * m["neutral"]["rms"] and m["neutral"]["rms"] > 1.1 * m["sad"]["rms"], m


@needs_espeak
def test_a_speaker_keeps_its_voice_across_languages(backend):
    settings = {lang: backend.settings(lang, SPEAKERS["s06"], plain("happy")) for lang in ("zh", "en")}
    for key in ("pitch", "speaker_range", "prosody"):
        assert settings["zh"][key] == settings["en"][key]
    assert settings["zh"]["voice"] == "cmn-latn-pinyin+f1" and settings["en"]["voice"] == "en-us+f1"
    f0 = {(s, lang): measure(backend.synthesize(SENTENCE[lang], lang, SPEAKERS[s], plain("neutral")),
                             backend.sample_rate)["f0"]
          for s in ("s06", "s07") for lang in ("zh", "en")}
    for s in ("s06", "s07"):  # across languages a voice moves far less than between two voices
        assert abs(np.log(f0[(s, "zh")] / f0[(s, "en")])) < 0.25 * abs(np.log(f0[("s06", "en")] / f0[("s07", "en")]))


@needs_espeak
def test_pair_durations_are_close_across_languages(backend):
    seconds = {lang: speech_duration(backend.synthesize(SENTENCE[lang], lang, SPEAKERS["s01"], plain("neutral")),
                                     backend.sample_rate) for lang in ("zh", "en")}
    assert 0.7 <= seconds["zh"] / seconds["en"] <= 1.5, seconds


def test_missing_espeak_is_a_one_line_error_with_the_install_hint():
    backend = EspeakBackend(executable="espeak-ng-not-installed")
    with pytest.raises(DragomanError) as err:
        backend.check([SPEAKERS["s01"]])
    assert "apt-get install espeak-ng" in str(err.value) and "\n" not in str(err.value)


@needs_espeak
def test_unknown_variant_or_voice_is_refused(backend):
    with pytest.raises(DragomanError, match="unknown espeak-ng voice variant 'nosuch'"):
        backend.check([Speaker("x", "m", "nosuch", 50, 0, 160, 70)])
    with pytest.raises(DragomanError, match="unknown en voice 'xx-yy'"):
        EspeakBackend(en_voice="xx-yy").check([])


def test_wav_stream_with_bogus_sizes_is_parsed():
    samples = (np.arange(-50, 50) * 300).astype("<i2")
    header = (b"RIFF" + (0x7FFFFFFF).to_bytes(4, "little") + b"WAVE" + b"fmt " + (16).to_bytes(4, "little")
              + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (22050).to_bytes(4, "little")
              + (44100).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
              + b"data" + (0x7FFFFFFF).to_bytes(4, "little"))
    wav, rate = parse_wav_bytes(header + samples.tobytes())
    assert rate == 22050 and np.allclose(wav * 32768, samples)
    with pytest.raises(DragomanError, match="not a WAV stream"):
        parse_wav_bytes(b"Error: voice does not exist")
