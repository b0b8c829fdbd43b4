"""Render planned pairs, filter them and write the split manifests.

Resumable and crash-safe: every wav is written atomically under a name that hashes its text and
rendering settings, so a re-run reuses exactly the files it would have written and a crash loses
nothing already rendered; manifests and `build_report.json` are written atomically at the end,
so a directory never holds manifests that look complete but are not. Rendering runs on a process
pool (`jobs`), one espeak-ng process per utterance, ~240x real time on 2 cores (DESIGN §6).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from dragoman.nodes.audio.io import SAMPLE_RATE
from dragoman.nodes.data.filters import HQ_RANGE, RATIO_RANGE, RecognitionFilter, judge_durations, speech_duration
from dragoman.nodes.data.planning import (DEFAULT_PROPORTIONS, SPLITS, Casting, GrammarPlanner, PlannedPair,
                                          quotas)
from dragoman.nodes.data.tts import EspeakBackend, TTSBackend
from dragoman.nodes.data.voices import DEFAULT_UNSEEN_SPEAKERS, EMOTIONS, SPEAKERS, get_emotions, get_speakers
from dragoman.nodes.errors import DragomanError
from dragoman.nodes.manifest import write_manifest

_BACKEND: TTSBackend | None = None


def _init_worker(backend: TTSBackend) -> None:
    global _BACKEND
    _BACKEND = backend
    import torch

    torch.set_num_threads(1)  # one espeak-ng + one resample per core; more threads only contend


def _read_existing(path: Path) -> np.ndarray | None:
    import soundfile as sf

    try:
        wav, rate = sf.read(str(path), dtype="float32")
    except Exception:  # unreadable leftovers are rendered again
        return None
    return wav if rate == SAMPLE_RATE and wav.ndim == 1 and len(wav) else None


def render_job(job: tuple) -> dict:
    """Render one utterance to `path` (or reuse the file already there) and measure it."""
    path, text, lang, speaker, prosody = job
    path = Path(path)
    wav = _read_existing(path) if path.exists() else None
    reused = wav is not None
    if wav is None:
        import torch

        from dragoman.nodes.audio.io import resample, write_audio

        try:
            raw = _BACKEND.synthesize(text, lang, speaker, prosody)
        except DragomanError as err:
            return {"error": str(err)}
        write_audio(path, resample(torch.from_numpy(raw), _BACKEND.sample_rate, SAMPLE_RATE))
        # Measure the file as written (16-bit): a resumed run reads it back, and measuring the
        # float signal instead moved 2 of 4,000 speech boundaries by one 10 ms frame.
        wav = _read_existing(path)
    return {"duration": len(wav) / SAMPLE_RATE, "speech_duration": speech_duration(wav, SAMPLE_RATE),
            "peak": float(np.abs(wav).max()), "reused": reused}


def ensure_writable(out_dir: Path) -> Path:
    """Create `out_dir` and prove a file can be written there, or a one-line error."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe.", dir=out_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise DragomanError(f"{out_dir}: cannot write the corpus here ({err.strerror or err})") from None
    return out_dir.resolve()


def write_json(path: Path, obj: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, ensure_ascii=False, indent=2)
    os.replace(tmp, path)


class CorpusBuilder:
    def __init__(self, out_dir: str | os.PathLike, backend: TTSBackend, jobs: int = 1,
                 ratio_range=RATIO_RANGE, hq_range=HQ_RANGE, recognition: RecognitionFilter | None = None,
                 progress: bool = True):
        if jobs < 1:
            raise DragomanError(f"--jobs must be at least 1 (got {jobs})")
        self.out_dir = ensure_writable(Path(out_dir))
        self.backend, self.jobs = backend, jobs
        self.ratio_range, self.hq_range = ratio_range, hq_range
        self.recognition = recognition
        self.progress = progress
        self._pool = None

    def wav_path(self, pair: PlannedPair, lang: str) -> Path:
        text = pair.zh if lang == "zh" else pair.en
        settings = self.backend.settings(lang, pair.speaker, pair.prosody)
        digest = hashlib.sha1(json.dumps([text, lang, settings], sort_keys=True, ensure_ascii=False).encode())
        return self.out_dir / "wavs" / pair.split / f"{pair.pair_id}_{lang}_{digest.hexdigest()[:10]}.wav"

    def _render(self, jobs: list[tuple]) -> list[dict]:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="rendering", unit="utt", disable=not self.progress, leave=False)
        if self.jobs == 1:
            global _BACKEND
            _BACKEND = self.backend
            results = []
            for job in jobs:
                results.append(render_job(job))
                bar.update()
        else:
            if self._pool is None:
                # spawn, not fork: the parent may hold torch/OpenMP threads that a fork would copy.
                self._pool = ProcessPoolExecutor(self.jobs, mp_context=get_context("spawn"),
                                                 initializer=_init_worker, initargs=(self.backend,))
            results = []
            for result in self._pool.map(render_job, jobs, chunksize=4):
                results.append(result)
                bar.update()
        bar.close()
        return results

    def _recognised(self, pair: PlannedPair, paths: dict[str, Path]) -> bool:
        import soundfile as sf

        for lang, path in paths.items():
            wav, _ = sf.read(str(path), dtype="float32")
            if not self.recognition.passes(wav, lang, pair.zh if lang == "zh" else pair.en):
                return False
        return True

    def _rows(self, pair: PlannedPair, paths, measured, verdict) -> list[dict]:
        rows = []
        for lang in ("zh", "en"):
            other = "en" if lang == "zh" else "zh"
            m = measured[lang]
            rows.append({
                "audio_filepath": str(paths[lang]), "duration": round(m["duration"], 4),
                "text": pair.zh if lang == "zh" else pair.en, "lang": lang,
                "speaker": pair.speaker.name, "emotion": pair.prosody.emotion, "pair_id": pair.pair_id,
                "split": pair.split, "hq": verdict.hq, "translation": pair.zh if other == "zh" else pair.en,
                "source_lang": pair.source_lang, "speech_duration": round(m["speech_duration"], 4),
                "duration_ratio": round(verdict.ratio, 4), "speech_ratio": round(verdict.speech_ratio, 4),
                "gender": pair.speaker.gender, **pair.extra,
                "render": self.backend.settings(lang, pair.speaker, pair.prosody),
            })
        return rows

    def build(self, planner, targets: dict[str, int], meta: dict | None = None) -> dict:
        """Render until every split holds its target number of kept pairs (or the planner runs
        out), then write `<split>.jsonl` for every split and `build_report.json`."""
        started = time.perf_counter()
        kept = {s: [] for s in SPLITS}
        dropped = {"duration_ratio": 0, "recognition": 0, "render_error": 0}
        errors, counts = [], {"rendered": 0, "reused": 0, "candidates": 0}
        try:
            while True:
                batch = []
                for split in SPLITS:
                    need = targets.get(split, 0) - len(kept[split])
                    if need > 0:  # a few spares so that a dropped pair rarely costs another round
                        batch += planner.take(split, need + math.ceil(0.02 * need))
                if not batch:
                    break
                jobs, paths = [], []
                for pair in batch:
                    p = {lang: self.wav_path(pair, lang) for lang in ("zh", "en")}
                    paths.append(p)
                    jobs += [(str(p[lang]), pair.zh if lang == "zh" else pair.en, lang, pair.speaker, pair.prosody)
                             for lang in ("zh", "en")]
                results = self._render(jobs)
                for i, pair in enumerate(batch):
                    counts["candidates"] += 1
                    measured = {"zh": results[2 * i], "en": results[2 * i + 1]}
                    failed = [m["error"] for m in measured.values() if "error" in m]
                    if failed:
                        dropped["render_error"] += 1
                        errors.append(f"{pair.pair_id}: {failed[0]}")
                        continue
                    for m in measured.values():
                        counts["reused" if m["reused"] else "rendered"] += 1
                    if len(kept[pair.split]) >= targets[pair.split]:
                        continue
                    src, tgt = measured[pair.source_lang], measured["en" if pair.source_lang == "zh" else "zh"]
                    verdict = judge_durations(src["duration"], tgt["duration"], src["speech_duration"],
                                              tgt["speech_duration"], self.ratio_range, self.hq_range)
                    if not verdict.keep:
                        dropped["duration_ratio"] += 1
                        continue
                    if self.recognition is not None and not self._recognised(pair, paths[i]):
                        dropped["recognition"] += 1
                        continue
                    kept[pair.split].append(self._rows(pair, paths[i], measured, verdict))
        finally:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
                self._pool = None
        seconds = time.perf_counter() - started
        for split in SPLITS:
            write_manifest(self.out_dir / f"{split}.jsonl", [row for pair in kept[split] for row in pair])
        report = self._report(kept, dropped, errors, counts, seconds, meta or {})
        write_json(self.out_dir / "build_report.json", report)
        return report

    def _report(self, kept, dropped, errors, counts, seconds, meta) -> dict:
        splits = {}
        for split in SPLITS:
            rows = [row for pair in kept[split] for row in pair]
            splits[split] = {
                "pairs": len(kept[split]), "utterances": len(rows),
                "hours": round(sum(r["duration"] for r in rows) / 3600, 4),
                "hq_share": round(sum(p[0]["hq"] for p in kept[split]) / max(1, len(kept[split])), 4),
                "speakers": sorted({r["speaker"] for r in rows}), "emotions": sorted({r["emotion"] for r in rows}),
                "manifest": str(self.out_dir / f"{split}.jsonl"),
            }
        return {
            **meta, "out_dir": str(self.out_dir), "backend": self.backend.name, "jobs": self.jobs,
            "ratio_range": list(self.ratio_range), "hq_range": list(self.hq_range), "splits": splits,
            "candidate_pairs": counts["candidates"], "dropped": dropped, "errors": errors[:20],
            "rendered_utterances": counts["rendered"], "reused_utterances": counts["reused"],
            "seconds": round(seconds, 2),
            "rendered_per_second": round(counts["rendered"] / seconds, 2) if seconds > 0 else 0.0,
            "audio_hours": round(sum(s["hours"] for s in splits.values()), 4),
        }


def make_casting(seed: int, speakers=None, unseen_speakers=DEFAULT_UNSEEN_SPEAKERS, emotions=None) -> Casting:
    """Casting from speaker/emotion names (one-line errors for unknown names)."""
    unseen = get_speakers(unseen_speakers)
    seen = [s for s in get_speakers(speakers or list(SPEAKERS)) if s.name not in set(unseen_speakers)]
    return Casting(seed, seen, unseen, get_emotions(emotions or list(EMOTIONS)))


def build_corpus(out_dir, n_pairs: int, seed: int = 0, jobs: int = 1, proportions=None, speakers=None,
                 unseen_speakers=DEFAULT_UNSEEN_SPEAKERS, emotions=None, backend: TTSBackend | None = None,
                 recognition: RecognitionFilter | None = None, progress: bool = True) -> dict:
    """Build the grammar corpus: `n_pairs` kept pairs split by `proportions` (DEFAULT_PROPORTIONS).

    With `jobs` > 1 the workers are spawned processes, so a script calling this must guard its
    entry point with `if __name__ == "__main__":` (as for any multiprocessing code).
    """
    if n_pairs < 1:
        raise DragomanError(f"--pairs must be at least 1 (got {n_pairs})")
    targets = quotas(n_pairs, proportions or DEFAULT_PROPORTIONS)
    casting = make_casting(seed, speakers, unseen_speakers, emotions)
    backend = backend or EspeakBackend()
    backend.check(sorted({v for vs in casting.voices.values() for v in vs}, key=lambda s: s.name))
    planner = GrammarPlanner(seed, casting)
    builder = CorpusBuilder(out_dir, backend, jobs, recognition=recognition, progress=progress)
    meta = {"source": "grammar", "seed": seed, "pairs_requested": n_pairs, "targets": targets,
            "heldout_combos": sorted(planner.heldout)}
    return builder.build(planner, targets, meta)
