"""Speech recognition plumbing: masked batched recognition equals one-by-one, a recogniser whose
padding leaks is caught, order is restored after length batching, transcript files load."""
import json

import numpy as np
import pytest
import torch

from dragoman.nodes.errors import DragomanError
from dragoman.nodes.eval.recognizers import (
    BatchLeakError,
    check_batch_invariance,
    length_batches,
    load_transcripts,
    pad_waveforms,
    resolve_key,
    transcribe_all,
)

FRAME = 400


class EnergyRecognizer:
    """Toy recogniser whose text depends on every frame it looks at: per 25 ms frame, 'a' if the
    frame is louder than the utterance's mean frame energy else 'b', runs collapsed, and the
    frame count appended. Masked, it looks only at an item's own frames. Unmasked (the Whisper
    bug), padding frames join the mean and the count, so shorter items in a batch change."""

    def __init__(self, masked: bool):
        self.masked = masked
        self.name = "energy-masked" if masked else "energy-leaky"

    def transcribe(self, wavs, lang):
        batch, lengths, mask = pad_waveforms(wavs)
        n_frames = batch.shape[1] // FRAME
        energy = batch[:, : n_frames * FRAME].reshape(len(wavs), n_frames, FRAME).pow(2).mean(-1)
        if self.masked:
            valid = mask[:, : n_frames * FRAME].reshape(len(wavs), n_frames, FRAME).all(-1)
        else:
            valid = torch.ones_like(energy, dtype=torch.bool)
        texts = []
        for row, keep in zip(energy, valid):
            e = row[keep]
            letters = ["a" if v > e.mean() else "b" for v in e.tolist()]
            collapsed = [c for i, c in enumerate(letters) if i == 0 or c != letters[i - 1]]
            texts.append(f"{lang}:{''.join(collapsed)}:{len(letters)}")
        return texts


def _utterances(n=7, seed=0):
    """Bursty noise of different lengths (0.3-1.5 s), so each has its own transcript."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        length = int(rng.uniform(0.3, 1.5) * 16000)
        env = np.repeat(rng.uniform(0.05, 1.0, size=length // 1600 + 1), 1600)[:length]
        out.append(torch.from_numpy((rng.normal(size=length) * env).astype(np.float32)))
    return out


def test_pad_waveforms_mask_and_lengths():
    wavs = [torch.ones(5), torch.ones(3), torch.ones(8)]
    batch, lengths, mask = pad_waveforms(wavs)
    assert batch.shape == (3, 8)
    assert lengths.tolist() == [5, 3, 8]
    assert mask.sum(1).tolist() == [5, 3, 8]
    assert batch[~mask].abs().sum() == 0 and batch[mask].eq(1).all()


def test_masked_batched_recognition_equals_one_by_one():
    wavs = _utterances()
    rec = EnergyRecognizer(masked=True)
    alone = [rec.transcribe([w], "en")[0] for w in wavs]
    assert len(set(alone)) == len(alone)  # the toy distinguishes every utterance
    assert rec.transcribe(wavs, "en") == alone
    assert check_batch_invariance(rec, wavs, "en") == []
    assert transcribe_all(rec, wavs, "en", batch_size=3) == alone


def test_leaky_batched_recognition_is_caught():
    wavs = _utterances()
    leaky = EnergyRecognizer(masked=False)
    alone = [leaky.transcribe([w], "en")[0] for w in wavs]
    batched = leaky.transcribe(wavs, "en")
    longest = int(np.argmax([len(w) for w in wavs]))
    assert batched[longest] == alone[longest]  # the longest item carries no padding ...
    assert sum(a != b for a, b in zip(batched, alone)) >= len(wavs) - 1  # ... every other changes
    assert check_batch_invariance(leaky, wavs, "en") != []
    with pytest.raises(BatchLeakError, match="padding leaks"):
        transcribe_all(leaky, wavs, "en", batch_size=4)


def test_length_batches_cover_every_index_once_longest_first():
    lengths = [5, 1, 9, 3, 7, 2, 8]
    batches = length_batches(lengths, 3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert [lengths[i] for i in batches[0]] == [9, 8, 7]
    assert all(len(b) <= 3 for b in batches)


def test_recogniser_returning_wrong_count_is_an_error():
    class Broken:
        name = "broken"

        def transcribe(self, wavs, lang):
            return ["x"]

    with pytest.raises(DragomanError, match="returned 1 texts for 2 inputs"):
        transcribe_all(Broken(), [torch.ones(10), torch.ones(12)], "en", check=False)


def test_transcript_files_jsonl_and_tsv(tmp_path):
    sub = tmp_path / "run"
    sub.mkdir()
    jsonl = sub / "asr.jsonl"
    jsonl.write_text(
        json.dumps({"audio": "a.wav", "text": "hello there"}) + "\n"
        + json.dumps({"output_audio": str(tmp_path / "b.wav"), "text": "你好"}, ensure_ascii=False) + "\n\n",
        encoding="utf-8",
    )
    table = load_transcripts(jsonl)
    assert table[str(resolve_key(sub / "a.wav", tmp_path))] == "hello there"
    assert table[str(resolve_key(tmp_path / "run" / ".." / "b.wav", tmp_path))] == "你好"

    tsv = sub / "asr.tsv"
    tsv.write_text("a.wav\thello there\nc.wav\t\n", encoding="utf-8")
    table = load_transcripts(tsv)
    assert table[str(resolve_key(sub / "a.wav", tmp_path))] == "hello there"
    assert table[str(resolve_key(sub / "c.wav", tmp_path))] == ""  # an empty transcript is a transcript


@pytest.mark.parametrize("content,message", [
    ("a.wav hello\n", "expected PATH<TAB>TEXT"),
    ('{"audio": "a.wav"\n', "not a JSON object line"),
    ('{"audio": "a.wav"}\n', "needs an audio path and a text"),
    ("a.wav\tone\na.wav\ttwo\n", "second, different transcript"),
    ("\n", "empty transcript file"),
])
def test_bad_transcript_files(tmp_path, content, message):
    path = tmp_path / "asr.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DragomanError, match=message):
        load_transcripts(path)
    with pytest.raises(DragomanError, match="no such transcript file"):
        load_transcripts(tmp_path / "missing.tsv")
