"""Feature caches are keyed by what they were computed from, not by where those files lie."""
import os
import shutil

import torch

from dragoman.nodes.codec_cache import FrameCache, fingerprint, load_or_build


def _files(tmp_path):
    manifest = tmp_path / "train.jsonl"
    manifest.write_text('{"audio_filepath": "a.wav"}\n')
    ckpt = tmp_path / "semantic.nemo"
    ckpt.write_bytes(b"\x00weights" * 1000)
    return manifest, ckpt


def _cache(value: int) -> FrameCache:
    return FrameCache.from_items([{"semantic": torch.full((3,), value), "length": torch.tensor(3)}], {"semantic": 1}, {})


def test_a_reinstalled_checkpoint_keeps_its_fingerprint_and_new_weights_change_it(tmp_path):
    manifest, ckpt = _files(tmp_path)
    before = fingerprint(str(manifest), {"semantic": str(ckpt)})
    copy = tmp_path / "site-packages" / "semantic.nemo"
    copy.parent.mkdir()
    shutil.copyfile(ckpt, copy)
    os.utime(copy, (1.0, 1.0))
    assert fingerprint(str(manifest), {"semantic": str(copy)}) == before
    ckpt.write_bytes(b"\x01weights" * 1000)
    assert fingerprint(str(manifest), {"semantic": str(ckpt)}) != before
    manifest.write_text('{"audio_filepath": "b.wav"}\n')
    assert fingerprint(str(manifest), {"semantic": str(copy)})["manifest"] != before["manifest"]


def test_load_or_build_reuses_a_fresh_cache_and_rebuilds_a_stale_one(tmp_path):
    manifest, ckpt = _files(tmp_path)
    path = tmp_path / "cache.pt"
    builds = []

    def build():
        builds.append(1)
        return _cache(len(builds))

    expected = fingerprint(str(manifest), {"semantic": str(ckpt)})
    first = load_or_build(path, expected, build)
    again = load_or_build(path, expected, build)
    assert len(builds) == 1 and torch.equal(again.item(0)["semantic"], first.item(0)["semantic"])
    ckpt.write_bytes(b"retrained")
    rebuilt = load_or_build(path, fingerprint(str(manifest), {"semantic": str(ckpt)}), build)
    assert len(builds) == 2 and int(rebuilt.item(0)["semantic"][0]) == 2
