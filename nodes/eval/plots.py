"""Figures for the evaluation report (matplotlib, Agg backend: no display needed).

- `example_<line>.png`: spectrogram with the F0 track on top, source above output, on one time
  axis so a length mismatch is visible at a glance;
- `duration_ratio.png`: histogram of dur_out / dur_src per direction with the SLC bands;
- `speaker_similarity.png`: histogram of per-utterance speaker similarity with the same- and
  different-speaker baselines marked, the scale that makes the number meaningful.
Text is kept ASCII (no transcripts in titles) so no CJK font is needed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from dragoman.nodes.audio.io import SAMPLE_RATE, read_audio
from dragoman.nodes.eval.pitch import track_pitch
from dragoman.nodes.eval.run_manifest import DIRECTIONS
from dragoman.nodes.eval.scoring import EvalResult, UtteranceScore

_COLORS = {"zh-en": "tab:blue", "en-zh": "tab:orange"}
_SPEC_MAX_HZ = 4000


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _log_spectrogram(wav: np.ndarray, n_fft: int = 512, hop: int = 160) -> np.ndarray:
    """[freq, frames] magnitude in dB, Hann window, clipped 80 dB under the peak."""
    if len(wav) < n_fft:
        wav = np.pad(wav, (0, n_fft - len(wav)))
    frames = np.lib.stride_tricks.sliding_window_view(wav, n_fft)[::hop] * np.hanning(n_fft)
    mag = np.abs(np.fft.rfft(frames, axis=1)).T
    db = 20 * np.log10(mag + 1e-9)
    return np.maximum(db, db.max() - 80)


def plot_example(score: UtteranceScore, path: Path) -> Path:
    plt = _pyplot()
    wavs = [read_audio(score.item.source_audio).numpy(), read_audio(score.item.output_audio).numpy()]
    longest = max(len(w) for w in wavs) / SAMPLE_RATE
    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    src, tgt = score.item.direction.split("-")
    tracks = [track_pitch(w) for w in wavs]
    voiced = np.concatenate([t.f0[t.voiced] for t in tracks])
    # One F0 scale for both panels, fitted to the voices so intonation is visible.
    f0_lo, f0_hi = (0.8 * voiced.min(), 1.25 * voiced.max()) if len(voiced) else (50.0, 500.0)
    for ax, wav, track, label in zip(axes, wavs, tracks, (f"source ({src})", f"output ({tgt})")):
        spec = _log_spectrogram(wav)
        keep = int(spec.shape[0] * _SPEC_MAX_HZ / (SAMPLE_RATE / 2))
        ax.imshow(spec[:keep], origin="lower", aspect="auto", cmap="magma",
                  extent=(0, len(wav) / SAMPLE_RATE, 0, _SPEC_MAX_HZ))
        ax.set_ylabel("frequency (Hz)")
        ax.set_title(f"{label}: {len(wav) / SAMPLE_RATE:.2f} s", loc="left", fontsize=10)
        f0 = np.where(track.voiced, track.f0, np.nan)
        twin = ax.twinx()
        twin.plot(track.times, f0, color="cyan", linewidth=2, label="F0")
        twin.set_ylim(f0_lo, f0_hi)
        twin.set_ylabel("F0 (Hz)", color="tab:cyan")
        ax.set_xlim(0, longest)
    axes[-1].set_xlabel("time (s)")

    def fmt(v):
        return "n/a" if v is None else f"{v:.2f}"

    fig.suptitle(f"line {score.item.line} ({score.item.direction}): duration ratio {score.ratio:.2f}, "
                 f"speaker sim {fmt(score.speaker_sim)}, F0 corr {fmt(score.f0_corr)}, "
                 f"energy corr {fmt(score.energy_corr)}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_duration_ratios(scores: Sequence[UtteranceScore], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ratios = np.asarray([s.ratio for s in scores])
    hi = max(2.0, float(np.percentile(ratios, 99)) + 0.1)
    bins = np.linspace(0.0, hi, 41)
    ax.axvspan(0.6, 1.4, color="tab:green", alpha=0.08, label="SLC 0.4 band")
    ax.axvspan(0.8, 1.2, color="tab:green", alpha=0.18, label="SLC 0.2 band")
    for d in DIRECTIONS:
        r = [s.ratio for s in scores if s.item.direction == d]
        if r:
            ax.hist(np.clip(r, 0, hi), bins=bins, alpha=0.6, color=_COLORS[d], label=f"{d} (n={len(r)})")
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xlabel("output duration / source duration")
    ax.set_ylabel("utterances")
    ax.set_title("Duration ratio (values beyond the axis are drawn at its end)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_speaker_similarity(scores: Sequence[UtteranceScore], same: float | None, diff: float | None,
                            judge: str, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bins = np.linspace(-0.2, 1.0, 49)
    for d in DIRECTIONS:
        sims = [s.speaker_sim for s in scores if s.item.direction == d and s.speaker_sim is not None]
        if sims:
            ax.hist(sims, bins=bins, alpha=0.6, color=_COLORS[d], label=f"source vs output, {d}")
    for value, label, style in ((same, "same speaker (sources)", "-"), (diff, "different speakers (sources)", "--")):
        if value is not None:
            ax.axvline(value, color="black", linestyle=style, label=f"{label}: {value:.2f}")
    ax.set_xlabel(f"cosine similarity ({judge})")
    ax.set_ylabel("utterances")
    ax.set_title("Speaker similarity")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_plots(result: EvalResult, out_dir: Path, n_examples: int = 3) -> list[Path]:
    """All figures of a report; examples are the first `n_examples` scored lines."""
    out_dir.mkdir(parents=True, exist_ok=True)
    s = result.summary
    paths = [
        plot_duration_ratios(result.utterances, out_dir / "duration_ratio.png"),
        plot_speaker_similarity(result.utterances, s["speaker_sim_same"], s["speaker_sim_diff"],
                                s["speaker_judge"]["name"], out_dir / "speaker_similarity.png"),
    ]
    for score in result.utterances[:n_examples]:
        paths.append(plot_example(score, out_dir / f"example_line{score.item.line}.png"))
    return paths
