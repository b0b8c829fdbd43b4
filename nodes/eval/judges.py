"""Judges for `dragoman eval`: named, swappable models that listen to the audio.

Choosing one. Each kind has a `Registry`; a judge is named on the command line as `NAME` or
`NAME:ARG` (ARG is usually a checkpoint path) and built by its factory, `factory(arg) -> judge`.
Factories come from trusted code only: `register(name, factory)` calls in dragoman (an adapter
registers itself here; tests register toy judges) and installed packages that declare an entry
point in the group `dragoman.eval.<kind>` (e.g. `[project.entry-points."dragoman.eval.recognizers"]
my-asr = "my_pkg.asr:make"`). Nothing is imported from a name typed on the command line.
Recognisers (`recognizers.RECOGNIZERS`) use the same registry class.

Speaker judges (`JUDGES`) have `info` (`JudgeInfo`: name, whether the judge is independent of
the system under test, a note) and `embed(wavs) -> [B, D]` L2-normalised embeddings of 16 kHz
mono tensors; speaker similarity is the cosine of source and output embeddings.
- `resemblyzer` (default): the GE2E d-vector LSTM (Wan et al. 2018, 3 x 256 LSTM on 40 mel
  bands, 1.6 s partials) whose weights ship inside the `resemblyzer` wheel, so it loads offline.
  The network and its front end are rebuilt here: the package's own loader unpickles its
  checkpoint without `weights_only`, and its VAD import needs `pkg_resources`, which current
  setuptools no longer ships. The weights are read with `torch.load(weights_only=True)`; the
  mel front end matches librosa's (tested against it); webrtcvad's silence trimming is replaced
  by an energy VAD with the same window, smoothing and dilation. Embeddings equal the package's
  own (cosine 1.0000 on espeak-ng speech without trimming, >= 0.9997 with it).
- `mfcc-stats` (fallback when resemblyzer is not installed): mean and standard deviation of
  MFCCs over speech frames. Untrained, so independent, but weak: read it against the
  same/different-speaker baselines that `dragoman eval` prints beside it.

Emotion classifiers (`EMOTION_CLASSIFIERS`) have `name`, `independent` (False when trained on
the same corpus as the system under test, which flatters the system) and `classify(wavs) ->
list[str]`. Registered: `emotion-tokenizer:PATH.nemo`, dragoman's EmotionTokenizer node.
"""
from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from dragoman.nodes.errors import DragomanError

SAMPLE_RATE = 16000
Factory = Callable[[str | None], Any]


class Registry:
    """Names -> factories for one kind of judge, plus the entry points of its group."""

    def __init__(self, kind: str, group: str):
        self.kind = kind
        self.group = group
        self._factories: dict[str, Factory] = {}

    def register(self, name: str, factory: Factory) -> None:
        if not name or ":" in name:
            raise ValueError(f"bad {self.kind} name {name!r}")
        self._factories[name] = factory

    def unregister(self, name: str) -> None:
        self._factories.pop(name, None)

    def _entry_points(self) -> dict[str, Any]:
        from importlib.metadata import entry_points

        return {ep.name: ep for ep in entry_points(group=self.group)}

    def names(self) -> list[str]:
        return sorted(set(self._factories) | set(self._entry_points()))

    def has(self, name: str) -> bool:
        return name in self._factories or name in self._entry_points()

    def create(self, spec: str) -> Any:
        """Build the judge named by `spec` ("NAME" or "NAME:ARG"); unknown names are a one-line
        error listing the known ones."""
        name, _, arg = spec.partition(":")
        factory = self._factories.get(name)
        if factory is None:
            ep = self._entry_points().get(name)
            if ep is None:
                known = ", ".join(self.names()) or "none registered"
                raise DragomanError(f"unknown {self.kind} {name!r} (known: {known})")
            factory = ep.load()
        return factory(arg or None)


# -- speaker judges ---------------------------------------------------------------------------
JUDGES = Registry("speaker judge", "dragoman.eval.speaker_judges")


@dataclasses.dataclass
class JudgeInfo:
    name: str
    independent: bool  # False for a judge that was trained together with the system under test
    note: str

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class SpeakerJudge(Protocol):
    info: JudgeInfo

    def embed(self, wavs: Sequence) -> np.ndarray: ...


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


# -- resemblyzer ----------------------------------------------------------------------------
# Constants of resemblyzer 0.1.4 (hparams.py): 25 ms / 10 ms mel frames, 40 bands, 160-frame
# partials taken 1.3 times a second, a last partial kept if it is at least 75 % covered,
# volume raised to -30 dBFS, 30 ms VAD windows smoothed over 8 and dilated by 6 + 1 windows.
_MEL_WIN, _MEL_HOP, _MEL_BANDS = 400, 160, 40
_PARTIAL_FRAMES, _PARTIAL_RATE, _MIN_COVERAGE = 160, 1.3, 0.75
_TARGET_DBFS = -30.0
_VAD_WIN, _VAD_SMOOTH, _VAD_DILATE = 480, 8, 7
# Energy VAD: a window is speech when within this many dB of the loud (95th percentile) windows.
_VAD_RANGE_DB = 30.0


def resemblyzer_weights() -> Path | None:
    """Path of `pretrained.pt` inside the installed resemblyzer package, without importing it."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"
    return path if path.is_file() else None


def normalize_volume(wav: np.ndarray, target_dbfs: float = _TARGET_DBFS) -> np.ndarray:
    """Raise (never lower) the RMS level to `target_dbfs`."""
    rms = float(np.sqrt(np.mean(wav.astype(np.float64) ** 2)))
    if rms <= 0:
        return wav
    change = target_dbfs - 20 * np.log10(rms)
    return wav * (10 ** (change / 20)) if change > 0 else wav


def trim_long_silences(wav: np.ndarray) -> np.ndarray:
    """Drop pauses longer than ~0.2 s: energy VAD on 30 ms windows, moving average of 8,
    dilation by 7 windows (resemblyzer's settings); all-silent input is returned whole."""
    from scipy.ndimage import binary_dilation

    n = len(wav) - len(wav) % _VAD_WIN
    if n == 0:
        return wav
    windows = wav[:n].reshape(-1, _VAD_WIN).astype(np.float64)
    db = 10 * np.log10(np.mean(windows**2, axis=1) + 1e-12)
    speech = (db > np.percentile(db, 95) - _VAD_RANGE_DB).astype(np.float64)
    kernel = np.ones(_VAD_SMOOTH) / _VAD_SMOOTH
    smooth = np.convolve(np.pad(speech, ((_VAD_SMOOTH - 1) // 2, _VAD_SMOOTH // 2)), kernel, mode="valid")
    keep = binary_dilation(np.round(smooth).astype(bool), np.ones(_VAD_DILATE))
    if not keep.any():
        return wav
    return wav[:n][np.repeat(keep, _VAD_WIN)]


def partial_slices(n_samples: int) -> list[tuple[int, int]]:
    """Mel-frame ranges [start, stop) of the 1.6 s partials covering an utterance."""
    n_frames = int(np.ceil((n_samples + 1) / _MEL_HOP))
    step = int(round(SAMPLE_RATE / _PARTIAL_RATE / _MEL_HOP))
    starts = range(0, max(1, n_frames - _PARTIAL_FRAMES + step + 1), step)
    slices = [(s, s + _PARTIAL_FRAMES) for s in starts]
    last_start = slices[-1][0] * _MEL_HOP
    coverage = (n_samples - last_start) / (_PARTIAL_FRAMES * _MEL_HOP)
    if coverage < _MIN_COVERAGE and len(slices) > 1:
        slices.pop()
    return slices


class _VoiceEncoderNet:
    """GE2E speaker encoder: LSTM(40 -> 256, 3 layers) -> Linear(256) -> ReLU -> L2 norm."""

    def __init__(self, weights: Path):
        import torch
        from torch import nn

        self.lstm = nn.LSTM(_MEL_BANDS, 256, 3, batch_first=True)
        self.linear = nn.Linear(256, 256)
        state = torch.load(weights, map_location="cpu", weights_only=True)["model_state"]
        self.lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
        self.linear.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("linear.")})
        self.lstm.eval()

    def __call__(self, mels):
        import torch

        with torch.inference_mode():
            _, (hidden, _) = self.lstm(mels)
            raw = torch.relu(self.linear(hidden[-1]))
            return raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-12)


class ResemblyzerJudge:
    def __init__(self, weights: str | None = None):
        import torchaudio

        path = Path(weights) if weights else resemblyzer_weights()
        if path is None or not path.is_file():
            raise DragomanError("speaker judge 'resemblyzer': package not installed (pip install resemblyzer)")
        self.net = _VoiceEncoderNet(path)
        # librosa.feature.melspectrogram defaults: centred frames, zero padding, periodic Hann,
        # power 2, Slaney mel scale with Slaney area normalisation.
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=SAMPLE_RATE, n_fft=_MEL_WIN, hop_length=_MEL_HOP, n_mels=_MEL_BANDS,
            power=2.0, center=True, pad_mode="constant", norm="slaney", mel_scale="slaney",
        )
        self.info = JudgeInfo("resemblyzer", True,
                              "GE2E d-vector from the resemblyzer wheel (not trained with dragoman)")

    def mel_frames(self, wav: np.ndarray) -> np.ndarray:
        """[frames, 40] power mel spectrogram (not log), as resemblyzer feeds its LSTM."""
        import torch

        return self.mel(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))).T.numpy()

    def embed(self, wavs: Sequence) -> np.ndarray:
        import torch

        partials, owner = [], []
        for i, w in enumerate(wavs):
            x = trim_long_silences(normalize_volume(_as_numpy(w)))
            slices = partial_slices(len(x))
            need = slices[-1][1] * _MEL_HOP
            if need > len(x):
                x = np.pad(x, (0, need - len(x)))
            mel = self.mel_frames(x)
            partials += [mel[a:b] for a, b in slices]
            owner += [i] * len(slices)
        embeds = self.net(torch.from_numpy(np.stack(partials))).numpy()
        owner_arr = np.asarray(owner)
        means = np.stack([embeds[owner_arr == i].mean(axis=0) for i in range(len(wavs))])
        return _l2(means)


# -- MFCC statistics (fallback) -------------------------------------------------------------
class MfccStatsJudge:
    def __init__(self, arg: str | None = None):
        import torchaudio

        self.mfcc = torchaudio.transforms.MFCC(
            sample_rate=SAMPLE_RATE, n_mfcc=21,
            melkwargs={"n_fft": _MEL_WIN, "hop_length": _MEL_HOP, "n_mels": 40},
        )
        self.info = JudgeInfo(
            "mfcc-stats", True,
            "fallback: mean+std of MFCC 1-20 over speech frames, not a trained speaker model (weak)",
        )

    def embed(self, wavs: Sequence) -> np.ndarray:
        import torch

        out = []
        for w in wavs:
            x = torch.from_numpy(np.ascontiguousarray(_as_numpy(w), dtype=np.float32))
            feats = self.mfcc(x).T.numpy()  # [frames, 21]; c0 is log energy
            # c0 = sqrt(40) x mean log-mel dB (orthonormal DCT): keep frames within 30 dB of loud ones.
            speech = feats[:, 0] > np.percentile(feats[:, 0], 95) - _VAD_RANGE_DB * np.sqrt(40)
            ceps = feats[speech, 1:] if speech.sum() >= 2 else feats[:, 1:]
            out.append(np.concatenate([ceps.mean(axis=0), ceps.std(axis=0)]))
        return _l2(np.stack(out))


def _as_numpy(w) -> np.ndarray:
    if hasattr(w, "detach"):
        w = w.detach().to("cpu").numpy()
    return np.asarray(w, dtype=np.float32).reshape(-1)


JUDGES.register("resemblyzer", lambda arg: ResemblyzerJudge(arg))
JUDGES.register("mfcc-stats", lambda arg: MfccStatsJudge(arg))


def default_judge_spec() -> str:
    return "resemblyzer" if resemblyzer_weights() is not None else "mfcc-stats"


# -- scores -----------------------------------------------------------------------------------
def pair_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two [N, D] embedding sets."""
    return np.sum(_l2(a) * _l2(b), axis=-1)


def speaker_baselines(embeds: np.ndarray, speakers: Sequence[str | None], keys: Sequence[str],
                      max_items: int = 2000, seed: int = 0) -> tuple[float | None, float | None, int, int]:
    """Mean cosine over pairs of *source* recordings by the same speaker and by different
    speakers: (same, diff, n_same_pairs, n_diff_pairs).

    Unlabelled recordings are left out, and so are pairs of one file with itself (a corpus that
    lists a source twice would otherwise push `same` towards 1). At most `max_items` recordings
    are used (a fixed random subset) to bound the N^2 pairs."""
    idx = [i for i, s in enumerate(speakers) if s is not None]
    if len(idx) > max_items:
        idx = sorted(np.random.default_rng(seed).choice(idx, max_items, replace=False).tolist())
    if len(idx) < 2:
        return None, None, 0, 0
    e = _l2(embeds[idx])
    sims = e @ e.T
    spk = np.asarray([speakers[i] for i in idx], dtype=object)
    key = np.asarray([keys[i] for i in idx], dtype=object)
    upper = np.triu(np.ones_like(sims, dtype=bool), k=1) & (key[:, None] != key[None, :])
    same = upper & (spk[:, None] == spk[None, :])
    diff = upper & (spk[:, None] != spk[None, :])

    def mean(m: np.ndarray) -> float | None:
        return float(sims[m].mean()) if m.any() else None

    return mean(same), mean(diff), int(same.sum()), int(diff.sum())


# -- emotion classifiers ----------------------------------------------------------------------
EMOTION_CLASSIFIERS = Registry("emotion classifier", "dragoman.eval.emotion_classifiers")


class EmotionClassifier(Protocol):
    name: str
    independent: bool

    def classify(self, wavs: Sequence) -> list[str]: ...


def agreement(source_labels: Sequence[str | None], output_labels: Sequence[str | None]) -> float | None:
    """Share of utterances whose output label equals the source label (pairs with a missing
    label are left out); None when no pair is complete. The scorer takes the source label from
    the manifest's `emotion` field when every line has one, else from the classifier run on the
    source audio ("same emotion as the source according to the classifier")."""
    pairs = [(s, o) for s, o in zip(source_labels, output_labels) if s is not None and o is not None]
    if not pairs:
        return None
    return sum(s == o for s, o in pairs) / len(pairs)


class EmotionTokenizerClassifier:
    """The EmotionTokenizer node's label head (NeMo loads lazily, on construction)."""

    independent = False

    def __init__(self, checkpoint: str | None):
        if not checkpoint:
            raise DragomanError("emotion classifier 'emotion-tokenizer' needs a checkpoint: "
                                "emotion-tokenizer:PATH.nemo")
        from dragoman.nodes.emotion_tokenizer import EmotionTokenizer

        self.node = EmotionTokenizer.restore_from(checkpoint)
        self.name = f"emotion-tokenizer:{checkpoint}"

    def classify(self, wavs: Sequence) -> list[str]:
        return list(self.node.run(audio=list(wavs))["emotion"])


EMOTION_CLASSIFIERS.register("emotion-tokenizer", EmotionTokenizerClassifier)
