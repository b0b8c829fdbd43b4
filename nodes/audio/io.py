"""Audio files in and out, with one-line errors.

Reading goes through soundfile (libsndfile: WAV, FLAC, OGG/Vorbis, MP3, AIFF, ... at any rate,
bit depth and channel count) because torchaudio 2.11's `load` needs torchcodec + FFmpeg.
Everything inside dragoman is mono float32 at 16 kHz, the rate of the UniSS tokenizers and codec.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from dragoman.nodes.errors import AudioError

SAMPLE_RATE = 16_000
# Refuse files longer than this unless the caller raises the cap: a 10-hour file read by mistake
# would take ~2.3 GB as float32 before anything useful happens.
DEFAULT_MAX_SECONDS = 3 * 3600.0


def _first_line(err: BaseException) -> str:
    # libsndfile's own reason ("Format not recognised.") without the "Error opening <path>:" prefix
    text = (getattr(err, "error_string", None) or str(err)).strip() or type(err).__name__
    return text.splitlines()[0]


def audio_info(path: str | os.PathLike) -> tuple[int, int, int]:
    """(frames, sample_rate, channels) of an audio file, or AudioError naming the file."""
    import soundfile as sf

    p = Path(path)
    if not p.exists():
        raise AudioError(f"{p}: no such file")
    if p.is_dir():
        raise AudioError(f"{p}: is a directory, not an audio file")
    if p.stat().st_size == 0:
        raise AudioError(f"{p}: empty file (0 bytes)")
    try:
        info = sf.info(str(p))
    except Exception as err:  # libsndfile reports every format problem through one exception type
        raise AudioError(f"{p}: not a readable audio file ({_first_line(err)})") from None
    return int(info.frames), int(info.samplerate), int(info.channels)


def read_audio(
    path: str | os.PathLike,
    sample_rate: int = SAMPLE_RATE,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
):
    """Read any soundfile-readable file as a mono float32 torch tensor at `sample_rate`.

    Channels are averaged; the rate is converted with torchaudio's windowed-sinc resampler.
    Raises AudioError for missing, empty, corrupt, non-audio, non-finite or too-long input.
    """
    import soundfile as sf
    import torch

    p = Path(path)
    frames, rate, _ = audio_info(p)
    if frames == 0:
        raise AudioError(f"{p}: contains no audio samples")
    if max_seconds is not None and frames / rate > max_seconds:
        raise AudioError(
            f"{p}: too long ({frames / rate:.0f} s; the limit is {max_seconds:.0f} s, raise it with max_seconds)"
        )
    try:
        data, rate = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as err:
        raise AudioError(f"{p}: could not decode audio ({_first_line(err)})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{p}: contains no audio samples")
    if not np.isfinite(data).all():
        raise AudioError(f"{p}: contains NaN or Inf samples")
    wav = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))
    return resample(wav, rate, sample_rate)


def resample(wav, orig_rate: int, new_rate: int):
    """Resample a 1-D (or [..., T]) float tensor; a no-op when the rates match."""
    if orig_rate == new_rate:
        return wav
    import torchaudio.functional as AF

    return AF.resample(wav, orig_rate, new_rate)


def write_audio(path: str | os.PathLike, wav, sample_rate: int = SAMPLE_RATE, subtype: str = "PCM_16") -> Path:
    """Write a mono waveform atomically (temp file + rename): a crash never leaves half a file."""
    import soundfile as sf
    import torch

    p = Path(path)
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().to("cpu", torch.float32).numpy()
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    if not np.isfinite(wav).all():
        raise AudioError(f"{p}: refusing to write NaN or Inf samples")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=p.suffix or ".wav", dir=p.parent)
        os.close(fd)
    except OSError as err:
        raise AudioError(f"{p}: cannot write here ({err.strerror})") from None
    try:
        sf.write(tmp, np.clip(wav, -1.0, 1.0), sample_rate, subtype=subtype)
        os.replace(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return p
