"""Score a run manifest: per-utterance measurements, then per-direction and overall summaries.

The summary (what `dragoman eval --json` prints) always has exactly `SUMMARY_KEYS`, and each
`by_direction` entry ("zh-en", "en-zh", both always present) exactly `DIRECTION_KEYS`. A value
that cannot be computed is null and `notes` says why. Rules that keep the numbers honest:
- a line with missing/unreadable/empty/silent audio or a malformed line is skipped, listed in
  `skipped` and counted in `n_skipped` (and a note says the scores cover only the rest);
- BLEU over a direction is computed only when every scored line of that direction has the text
  (output_text for Text-BLEU, a transcript for Speech-BLEU): scoring the subset that happens to
  have one would let a system drop its hard cases;
- BLEU is never pooled across target languages (different tokenizers): with both directions in
  one manifest the top-level BLEU is null and the per-direction values are the result.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from dragoman.nodes.audio.io import SAMPLE_RATE, audio_info, read_audio
from dragoman.nodes.errors import AudioError, DragomanError
from dragoman.nodes.eval import pitch, text_bleu
from dragoman.nodes.eval.judges import (
    EMOTION_CLASSIFIERS,
    JUDGES,
    agreement,
    default_judge_spec,
    pair_cosines,
    speaker_baselines,
)
from dragoman.nodes.eval.prosody import MIN_FRAMES, SLC_THRESHOLDS, Contours, contour_correlations, slc
from dragoman.nodes.eval.recognizers import (
    DEFAULT_RECOGNIZER,
    RECOGNIZERS,
    BatchLeakError,
    load_transcripts,
    resolve_key,
    transcribe_all,
)
from dragoman.nodes.eval.run_manifest import DIRECTIONS, RunItem, Skipped, load_run

def _default_emotion_classifier():
    """The committed EmotionTokenizer, when this build has one (it is not independent of the
    system: the output report labels it so)."""
    from dragoman.nodes.emotion_tokenizer import EmotionTokenizer

    path = EmotionTokenizer.default_checkpoint()
    return EMOTION_CLASSIFIERS.create(f"emotion-tokenizer:{path}") if path.is_file() else None


DIRECTION_KEYS = ("text_bleu", "speech_bleu", "slc_0.2", "slc_0.4", "speaker_sim", "emotion_agreement",
                  "f0_corr", "energy_corr", "rtf", "n_scored")
SUMMARY_KEYS = DIRECTION_KEYS[:-1] + ("speaker_sim_same", "speaker_sim_diff", "speaker_judge", "timings",
                                      "by_direction", "n_scored", "n_skipped", "skipped", "settings", "notes")


@dataclasses.dataclass
class EvalOptions:
    asr_transcripts: str | None = None  # JSONL/TSV file of output_audio -> text
    recognizer: str | None = None  # registered recogniser spec, NAME[:ARG]
    judge: str | None = None  # speaker judge spec; None = resemblyzer when installed
    emotion_classifier: str | None = None  # emotion classifier spec; None = not measured
    batch_size: int = 16
    progress: bool = False


@dataclasses.dataclass
class UtteranceScore:
    item: RunItem
    source_s: float
    output_s: float
    f0_corr: float | None
    energy_corr: float | None
    speaker_sim: float | None = None
    asr_text: str | None = None
    source_emotion: str | None = None
    output_emotion: str | None = None

    @property
    def ratio(self) -> float:
        return self.output_s / self.source_s


@dataclasses.dataclass
class EvalResult:
    manifest: Path
    summary: dict
    utterances: list[UtteranceScore]
    skipped: list[Skipped]


def _load(path: Path):
    """(16 kHz waveform, duration in seconds from the file header); AudioError if unusable."""
    frames, rate, _ = audio_info(path)
    wav = read_audio(path)
    if not bool((wav != 0).any()):
        raise AudioError(f"{path}: silent (every sample is zero)")
    return wav, frames / rate


class _Judges:
    """The judges of one evaluation, set up once; `notes` collects why a metric is missing."""

    def __init__(self, opts: EvalOptions, items: Sequence[RunItem], notes: list[str]):
        self.notes = notes
        spec = opts.judge or default_judge_spec()
        self.speaker = JUDGES.create(spec)
        if not opts.judge and spec != "resemblyzer":
            notes.append("speaker_sim: resemblyzer is not installed, using the weak mfcc-stats fallback judge")
        if opts.asr_transcripts and opts.recognizer:
            raise DragomanError("give either --asr-transcripts or --recognizer, not both")
        self.transcripts = load_transcripts(opts.asr_transcripts) if opts.asr_transcripts else None
        off = opts.recognizer == "none"  # explicitly no recogniser, not even the default
        self.recognizer = RECOGNIZERS.create(opts.recognizer) if opts.recognizer and not off else None
        if self.recognizer is None and not off and not opts.asr_transcripts and RECOGNIZERS.has(DEFAULT_RECOGNIZER):
            try:  # the default is used when it can load; asking for it explicitly still fails loudly
                self.recognizer = RECOGNIZERS.create(DEFAULT_RECOGNIZER)
            except DragomanError as err:
                notes.append(f"speech_bleu: default recogniser {DEFAULT_RECOGNIZER} unavailable ({err})")
        self.recognizer_broken = False
        self.checked_langs: set[str] = set()
        if self.transcripts is None and self.recognizer is None:
            known = ", ".join(RECOGNIZERS.names()) or "none registered yet"
            notes.append(f"speech_bleu: no recogniser; pass --asr-transcripts FILE or --recognizer NAME ({known})")
        emotion_off = opts.emotion_classifier == "none"
        self.emotion = EMOTION_CLASSIFIERS.create(opts.emotion_classifier) if opts.emotion_classifier and not emotion_off else None
        if self.emotion is None and not emotion_off:
            self.emotion = _default_emotion_classifier()
        if self.emotion is None:
            notes.append("emotion_agreement: no emotion classifier given "
                         "(--emotion-classifier emotion-tokenizer:PATH.nemo)")
        self.emotion_from_labels = bool(items) and all(i.emotion for i in items)

    def transcribe(self, scores: list[UtteranceScore], outputs: list, opts: EvalOptions) -> None:
        if self.transcripts is not None:
            for s in scores:
                s.asr_text = self.transcripts.get(str(resolve_key(s.item.output_audio, Path.cwd())))
            return
        if self.recognizer is None or self.recognizer_broken:
            return
        for lang in {s.item.target_lang for s in scores}:
            idx = [k for k, s in enumerate(scores) if s.item.target_lang == lang]
            try:
                texts = transcribe_all(self.recognizer, [outputs[k] for k in idx], lang, opts.batch_size,
                                       check=lang not in self.checked_langs)
            except BatchLeakError as err:
                self.notes.append(f"speech_bleu: {err}")
                self.recognizer_broken = True
                return
            self.checked_langs.add(lang)
            for k, text in zip(idx, texts):
                scores[k].asr_text = text

    def classify(self, scores: list[UtteranceScore], sources: list, outputs: list) -> None:
        if self.emotion is None:
            return
        out_labels = self.emotion.classify(outputs)
        src_labels = [s.item.emotion for s in scores] if self.emotion_from_labels else self.emotion.classify(sources)
        for s, a, b in zip(scores, src_labels, out_labels):
            s.source_emotion, s.output_emotion = a, b


def evaluate(manifest: str | Path, opts: EvalOptions | None = None) -> EvalResult:
    opts = opts or EvalOptions()
    manifest = Path(manifest)
    items, skipped = load_run(manifest)
    notes: list[str] = []
    judges = _Judges(opts, items, notes)
    scores: list[UtteranceScore] = []
    src_embeds: list[np.ndarray] = []
    copies = 0

    chunks = [items[i : i + opts.batch_size] for i in range(0, len(items), opts.batch_size)]
    bar = None
    if opts.progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc="scoring", unit="utt")
    for chunk in chunks:
        chunk_scores, sources, outputs = [], [], []
        for item in chunk:
            try:
                src, src_s = _load(item.source_audio)
                out, out_s = _load(item.output_audio)
            except AudioError as err:
                skipped.append(Skipped(item.line, str(err)))
                continue
            if src.shape == out.shape and bool((src == out).all()):
                copies += 1
            f0_r, energy_r = contour_correlations(Contours.of(src), Contours.of(out))
            chunk_scores.append(UtteranceScore(item, src_s, out_s, f0_r, energy_r))
            sources.append(src)
            outputs.append(out)
        if chunk_scores:
            e_src = judges.speaker.embed(sources)
            e_out = judges.speaker.embed(outputs)
            for s, sim in zip(chunk_scores, pair_cosines(e_src, e_out)):
                s.speaker_sim = float(sim)
            src_embeds.extend(e_src)
            judges.transcribe(chunk_scores, outputs, opts)
            judges.classify(chunk_scores, sources, outputs)
            scores.extend(chunk_scores)
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    skipped.sort(key=lambda s: s.line)
    if copies:
        # Copying the source input scores perfectly on every voice, prosody and length metric.
        notes.append(f"{copies} output(s) are sample-for-sample copies of their source audio")
    if not scores:
        first = "; ".join(f"line {s.line}: {s.reason}" for s in skipped[:2])
        raise DragomanError(f"{manifest}: no line could be scored ({len(skipped)} skipped; {first})")

    summary = _summarise(scores, skipped, judges, np.stack(src_embeds), opts, manifest)
    return EvalResult(manifest, summary, scores, skipped)


def real_time_factor(pairs: Iterable[tuple[float | None, float]]) -> tuple[float | None, int]:
    """(sum of seconds / sum of source seconds, utterances counted) over the (seconds, source
    seconds) pairs whose seconds are known. Pooled, not averaged per utterance, so utterances
    weigh as much as their audio does; RTF < 1 is faster than real time."""
    known = [(t, d) for t, d in pairs if t is not None]
    total_audio = sum(d for _, d in known)
    if not known or total_audio <= 0:
        return None, 0
    return sum(t for t, _ in known) / total_audio, len(known)


def stage_timings(rows: Sequence[tuple[dict[str, float], float]]) -> dict[str, dict]:
    """{stage: {total_s, mean_s, rtf, n}} from (timings, source seconds) per utterance; each
    stage's RTF is over the utterances that recorded that stage."""
    stages: dict[str, list[tuple[float, float]]] = {}
    for timings, src_dur in rows:
        for stage, seconds in timings.items():
            stages.setdefault(stage, []).append((seconds, src_dur))
    out = {}
    for stage in sorted(stages):
        vals = stages[stage]
        total = sum(t for t, _ in vals)
        rtf, n = real_time_factor(vals)
        out[stage] = {"total_s": total, "mean_s": total / len(vals), "rtf": rtf, "n": n}
    return out


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def _bleu(hyps: list[str | None], scores: list[UtteranceScore], lang: str, what: str, direction: str,
          notes: list[str], signatures: dict) -> float | None:
    """Corpus BLEU of a direction, or None (with a note) unless every line has a hypothesis."""
    missing = sum(h is None for h in hyps)
    if missing == len(hyps):
        return None
    if missing:
        notes.append(f"{what} {direction}: {missing} of {len(hyps)} lines have no text; not scored")
        return None
    result = text_bleu.corpus_bleu(hyps, [s.item.reference_text for s in scores], lang)
    signatures[lang] = result.signature
    return result.score


def _language_free(scores: list[UtteranceScore]) -> dict:
    """The metrics that can be pooled over both directions (everything but BLEU)."""
    ratios = [s.ratio for s in scores]
    out = {"text_bleu": None, "speech_bleu": None}
    out.update({f"slc_{p}": slc(ratios, p) for p in SLC_THRESHOLDS})
    out["speaker_sim"] = _mean([s.speaker_sim for s in scores])
    out["emotion_agreement"] = agreement([s.source_emotion for s in scores], [s.output_emotion for s in scores])
    out["f0_corr"] = _mean([s.f0_corr for s in scores])
    out["energy_corr"] = _mean([s.energy_corr for s in scores])
    out["rtf"] = real_time_factor((s.item.wall_s, s.source_s) for s in scores)[0]
    return out


def _direction(scores: list[UtteranceScore], direction: str, judges: _Judges, notes: list[str], sigs: dict) -> dict:
    if not scores:
        return {**dict.fromkeys(DIRECTION_KEYS), "n_scored": 0}
    out = {**_language_free(scores), "n_scored": len(scores)}
    lang = scores[0].item.target_lang
    texts = [s.item.output_text for s in scores]
    out["text_bleu"] = _bleu(texts, scores, lang, "text_bleu", direction, notes, sigs)
    if all(t is None for t in texts):
        notes.append(f"text_bleu {direction}: the run wrote no output_text (direct mode?)")
    if judges.transcripts is not None or (judges.recognizer is not None and not judges.recognizer_broken):
        asr = [s.asr_text for s in scores]
        out["speech_bleu"] = _bleu(asr, scores, lang, "speech_bleu", direction, notes, sigs)
    return out


def _summarise(scores, skipped, judges: _Judges, src_embeds, opts: EvalOptions, manifest: Path) -> dict:
    notes = judges.notes
    sigs: dict[str, str] = {}
    by_dir = {d: _direction([s for s in scores if s.item.direction == d], d, judges, notes, sigs) for d in DIRECTIONS}
    present = [d for d in DIRECTIONS if by_dir[d]["n_scored"]]
    if len(present) == 1:
        summary = {k: by_dir[present[0]][k] for k in DIRECTION_KEYS[:-1]}
    else:
        summary = _language_free(scores)
        notes.append("text_bleu/speech_bleu: both directions in one run; BLEU is per direction (by_direction)")
    same, diff, n_same, n_diff = speaker_baselines(
        src_embeds, [s.item.speaker for s in scores], [str(s.item.source_audio) for s in scores])
    if same is None or diff is None:
        notes.append("speaker_sim_same/diff: need source lines with a `speaker` field from at least two "
                     f"speakers and two files of one speaker ({n_same} same, {n_diff} different pairs)")
    undefined_f0 = sum(s.f0_corr is None for s in scores)
    if undefined_f0:
        notes.append(f"f0_corr: undefined for {undefined_f0} utterance(s) (under {MIN_FRAMES} frames voiced in both)")
    timed = sum(s.item.wall_s is not None for s in scores)
    if not timed:
        notes.append("rtf: the run recorded no wall_s")
    elif timed < len(scores):
        notes.append(f"rtf: only {timed} of {len(scores)} lines recorded wall_s; RTF is over those")
    if skipped:
        notes.append(f"{len(skipped)} line(s) skipped; every score covers only the {len(scores)} scored lines")
    summary.update({
        "speaker_sim_same": same,
        "speaker_sim_diff": diff,
        "speaker_judge": judges.speaker.info.as_dict(),
        "timings": stage_timings([(s.item.timings, s.source_s) for s in scores]) or None,
        "by_direction": by_dir,
        "n_scored": len(scores),
        "n_skipped": len(skipped),
        "skipped": [s.as_dict() for s in skipped],
        "settings": _settings(judges, opts, manifest, sigs, n_same, n_diff),
        "notes": notes,
    })
    return {k: summary[k] for k in SUMMARY_KEYS}


def _settings(judges: _Judges, opts: EvalOptions, manifest: Path, sigs: dict, n_same: int, n_diff: int) -> dict:
    if judges.transcripts is not None:
        asr = f"transcripts from {opts.asr_transcripts}"
    elif judges.recognizer is not None:
        asr = f"recogniser {judges.recognizer.name} (batched, padding checked against one-by-one)"
    else:
        asr = None
    classifier = judges.emotion
    return {
        "manifest": str(manifest),
        "bleu": {
            "en": "lowercase, punctuation removed except apostrophes, tokenize 13a",
            "zh": "OpenCC t2s, punctuation removed, tokenize zh",
            "signatures": sigs,
        },
        "slc": "share with |dur_out/dur_src - 1| <= p, durations from the audio file headers",
        "speech_recognition": asr,
        "speaker_baseline_pairs": {"same": n_same, "diff": n_diff},
        "emotion_classifier": None if classifier is None else {
            "name": classifier.name, "independent": classifier.independent,
            "source_label": "manifest emotion field" if judges.emotion_from_labels else "classifier on source audio",
        },
        "pitch": {"method": "YIN", "fmin_hz": pitch.F_MIN, "fmax_hz": pitch.F_MAX, "hop_s": pitch.HOP_S,
                  "threshold": pitch.THRESHOLD, "sample_rate": SAMPLE_RATE},
        "contours": "speech region, time-normalised to the shorter length; F0 in semitones over frames voiced in both",
    }
