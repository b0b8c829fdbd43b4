"""Run manifest parsing: path resolution, optional fields, and each kind of bad line skipped with
its (1-based, blank lines counted) line number."""
import json

import pytest

from dragoman.nodes.eval.run_manifest import RunManifestError, load_run

GOOD = {"source_audio": "a/src.wav", "output_audio": "out.wav", "source_lang": "en", "target_lang": "zh",
        "reference_text": "你好"}


def test_paths_resolve_against_the_manifest_folder(tmp_path, write_run):
    absolute = str(tmp_path / "elsewhere" / "o.wav")
    rows = [GOOD, {**GOOD, "output_audio": absolute, "timings": {"decoder": 0.25}, "wall_s": 1, "speaker": "s1"}]
    (tmp_path / "run").mkdir()
    items, skipped = load_run(write_run(tmp_path / "run" / "run.jsonl", rows))
    assert skipped == []
    assert items[0].source_audio == tmp_path / "run" / "a" / "src.wav"
    assert items[0].output_text is None and items[0].timings == {} and items[0].direction == "en-zh"
    assert str(items[1].output_audio) == absolute
    assert items[1].timings == {"decoder": 0.25} and items[1].wall_s == 1.0 and items[1].speaker == "s1"


@pytest.mark.parametrize("row,reason", [
    ({**GOOD, "wall_s": -1}, "non-negative number"),
    ({**GOOD, "wall_s": "fast"}, "non-negative number"),
    ({**GOOD, "timings": [1, 2]}, "'timings' must be an object"),
    ({**GOOD, "timings": {"decoder": "x"}}, "non-negative number"),
    ({**GOOD, "source_lang": "en", "target_lang": "en"}, "unsupported direction"),
    ({**GOOD, "output_text": 5}, "'output_text' must be a string"),
    ({**GOOD, "output_audio": ""}, "missing required field(s) ['output_audio']"),
])
def test_bad_fields_skip_the_line(tmp_path, write_run, row, reason):
    items, skipped = load_run(write_run(tmp_path / "run.jsonl", [GOOD, "", json.dumps(row)]))
    assert len(items) == 1
    assert [s.line for s in skipped] == [3]
    assert reason in skipped[0].reason


def test_missing_and_blank_manifests(tmp_path, write_run):
    with pytest.raises(RunManifestError, match="no such run manifest"):
        load_run(tmp_path / "nope.jsonl")
    with pytest.raises(RunManifestError, match="empty run manifest"):
        load_run(write_run(tmp_path / "blank.jsonl", ["", "   "]))
