"""`dragoman eval` end to end on runs made of synthetic audio with known durations and texts:
the JSON schema, per-direction BLEU/SLC values, bad lines skipped and counted, Speech-BLEU from
transcript files and from a registered recogniser, emotion agreement, the report folder."""
import csv
import json

import numpy as np
import pytest

from dragoman.graphs.cli import main
from dragoman.nodes.audio.io import write_audio
from dragoman.nodes.eval.judges import EMOTION_CLASSIFIERS
from dragoman.nodes.eval.pitch import track_pitch
from dragoman.nodes.eval.recognizers import DEFAULT_RECOGNIZER, RECOGNIZERS, pad_waveforms
from dragoman.nodes.eval.run_manifest import DIRECTIONS
from dragoman.nodes.eval.scoring import DIRECTION_KEYS, SUMMARY_KEYS

SR = 16_000
EN = ["the weather is nice today", "where is the train station", "we planted seven apple trees"]
ZH = ["今天天气很好", "火车站在哪里", "我们种了七棵苹果树"]
# output/source duration ratios: within 0.2: 1.0, 1.1, 0.85; within 0.4 also 1.3, 0.7; not 1.5
RATIOS = [1.0, 1.3, 0.85, 1.1, 0.7, 1.5]


@pytest.fixture
def run_dir(tmp_path, tone, f0_glide):
    """Six utterances (three per direction), outputs the same intonation stretched by RATIOS;
    outputs' texts equal the references. Returns (folder, rows)."""
    rows = []
    for i, ratio in enumerate(RATIOS):
        src_s = 1.0 + 0.2 * i
        base = 120.0 if i % 2 else 210.0
        src = tone(f0_glide(src_s, base, 4.0, 1.0))
        out = tone(f0_glide(src_s * ratio, base * 0.9, 4.0, 1.0))
        write_audio(tmp_path / f"src{i}.wav", src)
        write_audio(tmp_path / f"out{i}.wav", out)
        zh_en = i < 3
        k = i % 3
        rows.append({
            "source_audio": f"src{i}.wav", "output_audio": f"out{i}.wav",
            "source_lang": "zh" if zh_en else "en", "target_lang": "en" if zh_en else "zh",
            "source_text": ZH[k] if zh_en else EN[k],
            "reference_text": EN[k] if zh_en else ZH[k], "output_text": EN[k] if zh_en else ZH[k],
            "speaker": f"spk{i % 2}", "wall_s": 0.5 * src_s,
            "timings": {"translator": 0.3 * src_s, "decoder": 0.2 * src_s},
        })
    return tmp_path, rows


def _eval(capsys, *args, defaults_off=True):
    """(exit code, parsed stdout JSON or None, stderr)."""
    args = list(args)
    # Pin the scorers: without this, the committed default checkpoints would be used.
    if defaults_off and "--recognizer" not in args and "--asr-transcripts" not in args:
        args += ["--recognizer", "none"]
    if defaults_off and "--emotion-classifier" not in args:
        args += ["--emotion-classifier", "none"]
    code = main(["eval", *map(str, args)])
    captured = capsys.readouterr()
    data = json.loads(captured.out) if code == 0 and "--json" in args else None
    return code, data, captured.err


def test_summary_schema_and_values(run_dir, write_run, capsys):
    folder, rows = run_dir
    code, s, err = _eval(capsys, "--manifest", write_run(folder / "run.jsonl", rows), "--json", "--judge", "mfcc-stats")
    assert code == 0, err
    assert tuple(s) == SUMMARY_KEYS
    assert list(s["by_direction"]) == list(DIRECTIONS)
    for d in DIRECTIONS:
        assert tuple(s["by_direction"][d]) == DIRECTION_KEYS
        assert s["by_direction"][d]["text_bleu"] == pytest.approx(100.0)
        assert s["by_direction"][d]["n_scored"] == 3
    assert s["text_bleu"] is None and any("per direction" in n for n in s["notes"])  # never pooled
    assert s["speech_bleu"] is None and any("no recogniser" in n for n in s["notes"])
    assert s["slc_0.2"] == pytest.approx(3 / 6) and s["slc_0.4"] == pytest.approx(5 / 6)
    assert s["by_direction"]["zh-en"]["slc_0.2"] == pytest.approx(2 / 3)  # 1.0, 0.85 in; 1.3 out
    assert s["by_direction"]["en-zh"]["slc_0.4"] == pytest.approx(2 / 3)  # 1.1, 0.7 in; 1.5 out
    assert s["f0_corr"] > 0.9 and s["energy_corr"] > 0.5  # same intonation, stretched
    assert s["rtf"] == pytest.approx(0.5, rel=1e-3)
    assert s["timings"]["translator"]["rtf"] == pytest.approx(0.3, rel=1e-3)
    assert s["speaker_judge"]["name"] == "mfcc-stats"
    assert -1 <= s["speaker_sim_diff"] <= 1 and -1 <= s["speaker_sim_same"] <= 1
    assert s["n_scored"] == 6 and s["n_skipped"] == 0 and s["skipped"] == []
    assert s["emotion_agreement"] is None


def test_single_direction_reports_top_level_bleu_and_shuffled_scores_low(run_dir, write_run, capsys):
    folder, rows = run_dir
    zh_en = rows[:3]
    _, s, _ = _eval(capsys, "--manifest", write_run(folder / "a.jsonl", zh_en), "--json", "--judge", "mfcc-stats")
    assert s["text_bleu"] == pytest.approx(100.0) == s["by_direction"]["zh-en"]["text_bleu"]
    assert s["by_direction"]["en-zh"] == {**dict.fromkeys(DIRECTION_KEYS), "n_scored": 0}
    shuffled = [{**r, "output_text": zh_en[(i + 1) % 3]["output_text"]} for i, r in enumerate(zh_en)]
    _, s, _ = _eval(capsys, "--manifest", write_run(folder / "b.jsonl", shuffled), "--json", "--judge", "mfcc-stats")
    assert s["text_bleu"] < 10.0


def test_bad_lines_are_skipped_counted_and_reported(run_dir, write_run, capsys, tone):
    folder, rows = run_dir
    (folder / "empty.wav").write_bytes(b"")
    (folder / "text.wav").write_text("not audio at all")
    write_audio(folder / "silent.wav", np.zeros(SR, np.float32))
    bad = [
        "{not json",
        json.dumps([1, 2]),
        json.dumps({k: v for k, v in rows[0].items() if k != "reference_text"}),
        json.dumps({**rows[0], "target_lang": "fr"}),
        json.dumps({**rows[0], "output_audio": "missing.wav"}),
        json.dumps({**rows[0], "output_audio": "empty.wav"}),
        json.dumps({**rows[0], "source_audio": "text.wav"}),
        json.dumps({**rows[0], "output_audio": "silent.wav"}),
    ]
    manifest = write_run(folder / "run.jsonl", rows[:3] + bad + rows[3:])
    code, s, err = _eval(capsys, "--manifest", manifest, "--json", "--judge", "mfcc-stats")
    assert code == 0
    assert s["n_scored"] == 6 and s["n_skipped"] == len(bad)
    assert [k["line"] for k in s["skipped"]] == list(range(4, 4 + len(bad)))
    reasons = " | ".join(k["reason"] for k in s["skipped"])
    for expected in ("not valid JSON", "not a JSON object", "reference_text", "unsupported direction",
                     "no such file", "empty file", "not a readable audio file", "silent"):
        assert expected in reasons
    assert err.count("dragoman: warning:") == len(bad)
    assert s["slc_0.2"] == pytest.approx(3 / 6)  # the good lines score as before
    assert any("8 line(s) skipped" in n for n in s["notes"])


def test_empty_or_unusable_manifest_is_a_one_line_error(tmp_path, write_run, capsys):
    code, _, err = _eval(capsys, "--manifest", write_run(tmp_path / "e.jsonl", []))
    assert code == 2 and err.strip().count("\n") == 0 and "empty run manifest" in err
    code, _, err = _eval(capsys, "--manifest", write_run(tmp_path / "b.jsonl", ["nope", "{}"]))
    assert code == 2 and "no line could be scored" in err and err.strip().count("\n") == 0
    code, _, err = _eval(capsys, "--manifest", tmp_path / "missing.jsonl")
    assert code == 2 and "no such run manifest" in err


def test_speech_bleu_from_a_transcript_file(run_dir, write_run, capsys):
    folder, rows = run_dir
    manifest = write_run(folder / "run.jsonl", rows)
    tsv = folder / "asr.tsv"
    tsv.write_text("".join(f"{r['output_audio']}\t{r['reference_text']}\n" for r in rows), encoding="utf-8")
    _, s, _ = _eval(capsys, "--manifest", manifest, "--json", "--judge", "mfcc-stats", "--asr-transcripts", tsv)
    assert [s["by_direction"][d]["speech_bleu"] for d in DIRECTIONS] == [pytest.approx(100.0)] * 2
    # one transcript missing: that direction is not scored on a convenient subset
    tsv.write_text("".join(f"{r['output_audio']}\t{r['reference_text']}\n" for r in rows[1:]), encoding="utf-8")
    _, s, _ = _eval(capsys, "--manifest", manifest, "--json", "--judge", "mfcc-stats", "--asr-transcripts", tsv)
    assert s["by_direction"]["zh-en"]["speech_bleu"] is None
    assert s["by_direction"]["en-zh"]["speech_bleu"] == pytest.approx(100.0)
    assert any("speech_bleu zh-en: 1 of 3 lines have no text" in n for n in s["notes"])


class LengthLookupRecognizer:
    """Recognises by sample count (every test output has its own length); masks padding when
    `masked`, otherwise counts the padded length like an unmasked batched model."""

    def __init__(self, table, masked=True):
        self.name, self.table, self.masked = "lookup", table, masked

    def transcribe(self, wavs, lang):
        batch, lengths, mask = pad_waveforms(wavs)
        counts = mask.sum(1) if self.masked else torch_full(len(wavs), batch.shape[1])
        return [self.table.get(int(n), "") for n in counts]


def torch_full(n, value):
    import torch

    return torch.full((n,), value)


@pytest.fixture
def registered():
    names = []

    def register(registry, name, factory):
        registry.register(name, factory)
        names.append((registry, name))

    yield register
    for registry, name in names:
        registry.unregister(name)


def test_speech_bleu_with_a_registered_recogniser(run_dir, write_run, capsys, registered):
    import soundfile as sf

    folder, rows = run_dir
    table = {sf.info(str(folder / r["output_audio"])).frames: r["reference_text"] for r in rows}
    registered(RECOGNIZERS, "lookup", lambda arg: LengthLookupRecognizer(table))
    registered(RECOGNIZERS, "leaky", lambda arg: LengthLookupRecognizer(table, masked=False))
    manifest = write_run(folder / "run.jsonl", rows)
    _, s, _ = _eval(capsys, "--manifest", manifest, "--json", "--judge", "mfcc-stats", "--recognizer", "lookup",
                    "--batch-size", "4")
    assert [s["by_direction"][d]["speech_bleu"] for d in DIRECTIONS] == [pytest.approx(100.0)] * 2
    _, s, _ = _eval(capsys, "--manifest", manifest, "--json", "--judge", "mfcc-stats", "--recognizer", "leaky")
    assert all(s["by_direction"][d]["speech_bleu"] is None for d in DIRECTIONS)
    assert any("padding leaks" in n for n in s["notes"])
    code, _, err = _eval(capsys, "--manifest", manifest, "--recognizer", "nope")
    assert code == 2 and "unknown recogniser 'nope'" in err
    # once a recogniser is registered under the default name, it is used without flags
    registered(RECOGNIZERS, DEFAULT_RECOGNIZER, lambda arg: LengthLookupRecognizer(table))
    _, s, _ = _eval(capsys, "--manifest", manifest, "--json", "--judge", "mfcc-stats", "--emotion-classifier", "none",
                    defaults_off=False)
    assert s["by_direction"]["en-zh"]["speech_bleu"] == pytest.approx(100.0)
    assert "recogniser lookup" in s["settings"]["speech_recognition"]


def test_outputs_that_copy_the_source_are_flagged(run_dir, write_run, capsys):
    folder, rows = run_dir
    copied = [{**r, "output_audio": r["source_audio"]} if i < 2 else r for i, r in enumerate(rows)]
    _, s, _ = _eval(capsys, "--manifest", write_run(folder / "run.jsonl", copied), "--json", "--judge", "mfcc-stats")
    assert any("2 output(s) are sample-for-sample copies" in n for n in s["notes"])


def test_direct_mode_run_without_output_text(run_dir, write_run, capsys):
    folder, rows = run_dir
    manifest = write_run(folder / "run.jsonl", [{k: v for k, v in r.items() if k != "output_text"} for r in rows])
    _, s, _ = _eval(capsys, "--manifest", manifest, "--json", "--judge", "mfcc-stats")
    assert all(s["by_direction"][d]["text_bleu"] is None for d in DIRECTIONS)
    assert any("no output_text" in n for n in s["notes"])
    assert s["slc_0.2"] == pytest.approx(0.5)


class PitchLevelClassifier:
    """'high' when the median F0 is over 165 Hz: the run's sources alternate 210 / 120 Hz."""

    name, independent = "pitch-level", True

    def classify(self, wavs):
        out = []
        for w in wavs:
            track = track_pitch(w)
            out.append("high" if np.median(track.f0[track.voiced]) > 165 else "low")
        return out


def test_emotion_agreement_with_a_classifier(run_dir, write_run, capsys, registered):
    folder, rows = run_dir
    registered(EMOTION_CLASSIFIERS, "pitch-level", lambda arg: PitchLevelClassifier())
    # outputs keep the register (x0.9): the classifier agrees with itself on every line
    manifest = write_run(folder / "run.jsonl", rows)
    _, s, _ = _eval(capsys, "--manifest", manifest, "--json", "--judge", "mfcc-stats",
                    "--emotion-classifier", "pitch-level")
    assert s["emotion_agreement"] == pytest.approx(1.0)
    assert s["settings"]["emotion_classifier"]["source_label"] == "classifier on source audio"
    # manifest labels win when every line has one: all "high" -> only the 210 Hz lines agree
    labelled = [{**r, "emotion": "high"} for r in rows]
    _, s, _ = _eval(capsys, "--manifest", write_run(folder / "l.jsonl", labelled), "--json", "--judge",
                    "mfcc-stats", "--emotion-classifier", "pitch-level")
    assert s["emotion_agreement"] == pytest.approx(3 / 6)
    assert s["settings"]["emotion_classifier"]["source_label"] == "manifest emotion field"


def test_report_folder(run_dir, write_run, capsys):
    folder, rows = run_dir
    out = folder / "report"
    code, _, err = _eval(capsys, "--manifest", write_run(folder / "run.jsonl", rows), "-o", out, "--examples", "2")
    assert code == 0, err
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "| Text-BLEU | n/a | 100.00 | 100.00 | 26.28 / 32.95 |" in md
    assert "resemblyzer" in md or "mfcc-stats" in md
    with open(out / "per_utterance.csv", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert [float(r["duration_ratio"]) for r in table] == pytest.approx(RATIOS, abs=1e-3)
    assert json.loads((out / "summary.json").read_text())["n_scored"] == 6
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["duration_ratio.png", "example_line1.png", "example_line2.png", "speaker_similarity.png"]
    assert all((out / p).stat().st_size > 10_000 for p in pngs)
