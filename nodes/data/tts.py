"""Text-to-speech backends for the corpus builder.

`TTSBackend` is the whole interface the builder needs, so a neural TTS node can replace espeak-ng
later: `check()` fails fast with a one-line error, `synthesize()` returns float32 mono samples at
`sample_rate`, `settings()` says what is recorded in the manifest. A backend is pickled into each worker process
(keep its state small: load weights lazily on first use).

`EspeakBackend` drives the espeak-ng command line with SSML prosody (`-m`). Mandarin goes through
the `cmn-latn-pinyin` voice, which reads Han characters from its dictionary and tone-numbered
pinyin; the plain `cmn` voice spells most characters out as English. A few words its dictionary
reads wrongly (checked with `espeak-ng -x`: 银行 as yin xing, 睡觉 as shui jue, measure word 只 as
zhi3, 地图 as de tu, ...) are passed as pinyin instead.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from abc import ABC, abstractmethod

import numpy as np

from dragoman.nodes.data.voices import Prosody, Speaker
from dragoman.nodes.errors import DragomanError

# Mandarin at the same words-per-minute setting lasts ~1.36x as long as the English translation
# (median over 40 grammar pairs, 4 voices); scaling its rate centres the duration ratio on ~1.
ZH_RATE_FACTOR = 1.35
# Its waveform is also peakier: at equal amplitude the Mandarin peaks run ~1.25x the English ones
# at about the same RMS; angry Mandarin clipped in 1 of 20 files at 1.0 and 1 of 40 at 0.85.
ZH_AMPLITUDE_FACTOR = 0.7

# Regex -> tone-numbered pinyin for words espeak-ng's cmn dictionary misreads.
ZH_READINGS = [
    (re.compile(r"(?<=[一二两三四五六七八九十几这那每])只"), " zhi1 "),
    (re.compile("银行"), " yin2 hang2 "),
    (re.compile("睡觉"), " shui4 jiao4 "),
    (re.compile("弹钢琴"), " tan2 gang1 qin2 "),
    (re.compile("地图"), " di4 tu2 "),
    (re.compile(r"(?<![心内])脏(?!器)"), " zang1 "),
    (re.compile("朵"), " duo3 "),
]


class TTSBackend(ABC):
    name: str = ""
    sample_rate: int = 0

    @abstractmethod
    def check(self, speakers: list[Speaker]) -> None:
        """Raise a one-line DragomanError if the backend or one of the speakers is unavailable."""

    @abstractmethod
    def synthesize(self, text: str, lang: str, speaker: Speaker, prosody: Prosody) -> np.ndarray:
        """Float32 mono samples at `self.sample_rate`."""

    @abstractmethod
    def settings(self, lang: str, speaker: Speaker, prosody: Prosody) -> dict:
        """The rendering settings written to the manifest (enough to render the line again)."""


def _ssml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _signed(value: float) -> str:
    return f"{value:+.1f}%"


def parse_wav_bytes(data: bytes) -> tuple[np.ndarray, int]:
    """16-bit PCM samples and rate from a RIFF stream whose size fields may be bogus
    (espeak-ng --stdout writes 0x7ffff... because it cannot seek back on a pipe)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise DragomanError("espeak-ng: output is not a WAV stream")
    pos, rate, bits = 12, 0, 16
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if chunk == b"fmt ":
            rate = int.from_bytes(data[pos + 12:pos + 16], "little")
            bits = int.from_bytes(data[pos + 22:pos + 24], "little")
        elif chunk == b"data":
            if bits != 16 or not rate:
                raise DragomanError(f"espeak-ng: unexpected WAV format ({bits}-bit, {rate} Hz)")
            body = data[pos + 8:]
            body = body[: len(body) - len(body) % 2]
            return np.frombuffer(body, dtype="<i2").astype(np.float32) / 32768.0, rate
        pos += 8 + size + (size & 1)
    raise DragomanError("espeak-ng: WAV stream has no data chunk")


class EspeakBackend(TTSBackend):
    name = "espeak-ng"
    sample_rate = 22050

    def __init__(self, executable: str = "espeak-ng", zh_voice: str = "cmn-latn-pinyin", en_voice: str = "en-us",
                 zh_rate_factor: float = ZH_RATE_FACTOR, zh_amplitude_factor: float = ZH_AMPLITUDE_FACTOR,
                 timeout_s: float = 60.0):
        self.executable = executable
        self.voices = {"zh": zh_voice, "en": en_voice}
        self.zh_rate_factor = zh_rate_factor
        self.zh_amplitude_factor = zh_amplitude_factor
        self.timeout_s = timeout_s

    def _run(self, args: list[str]) -> subprocess.CompletedProcess:
        try:
            return subprocess.run([self.executable] + args, capture_output=True, timeout=self.timeout_s)
        except FileNotFoundError:
            raise DragomanError(
                f"{self.executable} not found: install it with 'sudo apt-get install espeak-ng' (Debian/Ubuntu) "
                "or 'make setup'") from None
        except OSError as err:
            raise DragomanError(f"{self.executable}: cannot run ({err.strerror})") from None
        except subprocess.TimeoutExpired:
            raise DragomanError(f"{self.executable}: no answer within {self.timeout_s:.0f} s") from None

    def check(self, speakers: list[Speaker]) -> None:
        if shutil.which(self.executable) is None:
            self._run(["--version"])  # raises the install hint
        languages = self._run(["--voices"]).stdout.decode(errors="replace").split()
        for lang, voice in self.voices.items():
            if voice not in languages:
                raise DragomanError(f"{self.executable}: unknown {lang} voice {voice!r} (see 'espeak-ng --voices')")
        listing = self._run(["--voices=variant"]).stdout.decode(errors="replace")
        variants = {field.split("/", 1)[1] for field in listing.split() if field.startswith("!v/")}
        for speaker in speakers:
            if speaker.variant not in variants:
                raise DragomanError(
                    f"speaker {speaker.name}: unknown espeak-ng voice variant {speaker.variant!r} "
                    "(see 'espeak-ng --voices=variant')")

    def _rate(self, lang: str, speaker: Speaker) -> int:
        return round(speaker.rate * (self.zh_rate_factor if lang == "zh" else 1.0))

    def _amplitude(self, lang: str, speaker: Speaker) -> int:
        return round(speaker.amplitude * (self.zh_amplitude_factor if lang == "zh" else 1.0))

    def reading(self, text: str, lang: str) -> str:
        """The text espeak-ng is given: Chinese with the misread words replaced by pinyin."""
        if lang == "zh":
            for pattern, pinyin in ZH_READINGS:
                text = pattern.sub(pinyin, text)
            text = " ".join(text.split())
        return text

    def ssml(self, text: str, lang: str, speaker: Speaker, prosody: Prosody) -> str:
        # Speaker range and emotion range multiply: a wide-range voice stays wider when sad.
        pitch_range = ((1 + speaker.range / 100) * (1 + prosody.range / 100) - 1) * 100
        return (f'<speak><prosody pitch="{_signed(prosody.pitch)}" range="{_signed(pitch_range)}" '
                f'rate="{_signed(prosody.rate)}" volume="{_signed(prosody.volume)}">'
                f"{_ssml_escape(self.reading(text, lang))}</prosody></speak>")

    def settings(self, lang: str, speaker: Speaker, prosody: Prosody) -> dict:
        return {"backend": self.name, "voice": f"{self.voices[lang]}+{speaker.variant}", "pitch": speaker.pitch,
                "rate": self._rate(lang, speaker), "amplitude": self._amplitude(lang, speaker),
                "speaker_range": speaker.range, "prosody": prosody.as_dict()}

    def synthesize(self, text: str, lang: str, speaker: Speaker, prosody: Prosody) -> np.ndarray:
        if lang not in self.voices:
            raise DragomanError(f"espeak-ng backend: unsupported language {lang!r} (zh or en)")
        args = ["-m", "-v", f"{self.voices[lang]}+{speaker.variant}", "-p", str(speaker.pitch),
                "-s", str(self._rate(lang, speaker)), "-a", str(self._amplitude(lang, speaker)), "--stdout",
                self.ssml(text, lang, speaker, prosody)]
        done = self._run(args)
        if done.returncode != 0 or not done.stdout:
            message = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
            raise DragomanError(f"espeak-ng failed on {text[:40]!r}: {message[0] if message else 'no output'}")
        wav, rate = parse_wav_bytes(done.stdout)
        if rate != self.sample_rate:
            raise DragomanError(f"espeak-ng: expected {self.sample_rate} Hz output, got {rate} Hz")
        return wav

