"""AudioLoader: formats, rates and channel counts against analytic references; bad files as
one-line AudioErrors that name the file."""
import numpy as np
import pytest
import soundfile as sf
import torch

from dragoman.nodes.audio.loader import AudioLoader, normalize_level
from dragoman.nodes.errors import AudioError, GraphError

SR = 16_000


def _tones(rate: int, seconds: float, freqs=(300.0, 500.0), amp=0.4) -> np.ndarray:
    """One sine per channel: [frames, channels]."""
    t = np.arange(int(rate * seconds)) / rate
    return np.stack([amp * np.sin(2 * np.pi * f * t) for f in freqs], axis=1)


def _mono_reference(seconds: float, freqs=(300.0, 500.0), amp=0.4) -> np.ndarray:
    """The same tones, averaged, sampled at 16 kHz: what the loader must return."""
    t = np.arange(int(SR * seconds)) / SR
    return np.mean([amp * np.sin(2 * np.pi * f * t) for f in freqs], axis=0)


def _interior(x, y, margin=SR // 20):
    """Compare away from the ends, where the resampler's filter sees zero padding."""
    n = min(len(x), len(y))
    return np.asarray(x[margin : n - margin]), np.asarray(y[margin : n - margin])


def test_8khz_stereo_is_mixed_to_mono_and_resampled(tmp_path):
    path = tmp_path / "stereo8k.wav"
    sf.write(path, _tones(8000, 1.5), 8000, subtype="PCM_16")
    out = AudioLoader().run(path=[path])
    wav, duration = out["audio"][0], out["duration"][0]
    assert wav.dtype == torch.float32 and wav.dim() == 1
    assert len(wav) == int(1.5 * SR) and duration == pytest.approx(1.5)
    got, ref = _interior(wav.numpy(), _mono_reference(1.5))
    assert np.max(np.abs(got - ref)) < 3e-3


def test_24bit_keeps_precision_beyond_16_bits(tmp_path):
    path = tmp_path / "deep.wav"
    ref = _mono_reference(0.5, freqs=(440.0,), amp=1e-4)  # 3.3 LSB of 16-bit, ~840 LSB of 24-bit
    sf.write(path, ref, SR, subtype="PCM_24")
    wav = AudioLoader().run(path=[path])["audio"][0].numpy()
    assert np.max(np.abs(wav - ref)) < 2.0**-22


def test_flac_at_44k1_stereo(tmp_path):
    path = tmp_path / "tones.flac"
    sf.write(path, _tones(44_100, 1.0, freqs=(250.0, 700.0)), 44_100, subtype="PCM_16")
    wav = AudioLoader().run(path=[str(path)])["audio"][0]
    got, ref = _interior(wav.numpy(), _mono_reference(1.0, freqs=(250.0, 700.0)))
    assert len(wav) == SR
    assert np.max(np.abs(got - ref)) < 3e-3


def test_batch_keeps_order_and_durations(tmp_path):
    paths = []
    for i, seconds in enumerate((0.25, 1.0, 0.5)):
        paths.append(tmp_path / f"{i}.wav")
        sf.write(paths[-1], np.full(int(SR * seconds), 0.1 * (i + 1)), SR)
    out = AudioLoader().run(path=paths)
    assert out["duration"] == pytest.approx([0.25, 1.0, 0.5])
    assert [round(float(w.mean()), 3) for w in out["audio"]] == [0.1, 0.2, 0.3]


def test_normalisation_modes():
    wav = torch.from_numpy(_mono_reference(1.0)).float() * 0.1
    assert torch.equal(normalize_level(wav, "none"), wav)
    assert float(normalize_level(wav, "peak", peak_level=0.9).abs().max()) == pytest.approx(0.9, rel=1e-5)
    rms = normalize_level(wav, "rms", rms_dbfs=-20.0).pow(2).mean().sqrt()
    assert 20 * np.log10(float(rms)) == pytest.approx(-20.0, abs=1e-3)
    # An RMS target that would clip is held back by the peak limit.
    assert float(normalize_level(wav, "rms", peak_level=0.5, rms_dbfs=0.0).abs().max()) == pytest.approx(0.5, rel=1e-5)
    silent = torch.zeros(100)
    assert torch.equal(normalize_level(silent, "peak"), silent)


def test_loader_config_is_checked():
    with pytest.raises(GraphError, match="normalize"):
        AudioLoader(normalize="loudest")


def _bad_files(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, np.zeros(1600), SR)
    header = good.read_bytes()[:44]
    files = {
        "corrupt": (tmp_path / "corrupt.wav", b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(7, 200))),
        "truncated": (tmp_path / "truncated.wav", header[:30]),
        "empty": (tmp_path / "empty.wav", b""),
        "text": (tmp_path / "notes.wav", b"this is a text file, not audio\n" * 20),
        "no samples": (tmp_path / "nosamples.wav", header),
    }
    for path, data in files.values():
        path.write_bytes(data)
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([0.0, np.nan, 0.5], dtype=np.float32), SR, subtype="FLOAT")
    inf = tmp_path / "inf.wav"
    sf.write(inf, np.array([0.0, np.inf, 0.5], dtype=np.float32), SR, subtype="FLOAT")
    return {**{k: v[0] for k, v in files.items()}, "nan": nan, "inf": inf, "missing": tmp_path / "missing.wav"}


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("corrupt", "not a readable audio file"),
        ("truncated", "not a readable audio file"),
        ("empty", "empty file"),
        ("text", "not a readable audio file"),
        ("no samples", "no audio samples"),
        ("nan", "NaN or Inf"),
        ("inf", "NaN or Inf"),
        ("missing", "no such file"),
    ],
)
def test_bad_file_is_one_line_error_naming_it(tmp_path, kind, reason):
    path = _bad_files(tmp_path)[kind]
    with pytest.raises(AudioError) as err:
        AudioLoader().run(path=[path])
    message = str(err.value)
    assert "\n" not in message and str(path) in message and reason in message


def test_too_long_file_is_refused_before_decoding(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, np.zeros(3 * SR), SR)
    with pytest.raises(AudioError, match=r"too long \(3 s; the limit is 2 s"):
        AudioLoader(max_seconds=2.0).run(path=[path])
    assert len(AudioLoader(max_seconds=None).run(path=[path])["audio"][0]) == 3 * SR
