"""Fixtures of the release tests: one tiny release directory per session, its nodes, and
partial copies (symlinks) with one piece missing or replaced."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .tiny_release import TINY_WIDTHS, write_release


@pytest.fixture(scope="session")
def release_root(tmp_path_factory) -> Path:
    return write_release(tmp_path_factory.mktemp("uniss_release") / "UniSS")


@pytest.fixture(scope="session")
def release_nodes(release_root):
    """The four release nodes loaded from the tiny directory, on CPU (fp32)."""
    from dragoman.nodes.release.uniss_nodes import UniSSContentTokenizer, UniSSDecoder, UniSSSemanticTokenizer, \
        UniSSSpeakerEncoder

    return {
        "speaker": UniSSSpeakerEncoder.from_release(release_root, {"widths": TINY_WIDTHS}).place("cpu"),
        "semantic": UniSSSemanticTokenizer.from_release(release_root).place("cpu"),
        "decoder": UniSSDecoder.from_release(release_root).place("cpu"),
        "content": UniSSContentTokenizer.from_release(release_root).place("cpu"),
    }


def mirror(source: Path, target: Path, skip: str = "", replace: dict[str, bytes] | None = None) -> Path:
    """A copy of the release made of symlinks, without the relative path `skip` and with the
    files in `replace` written out instead of linked."""
    replace = replace or {}
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source).as_posix()
        if skip and (rel == skip or rel.startswith(skip + "/")):
            continue
        out = target / rel
        if path.is_dir():
            out.mkdir(parents=True, exist_ok=True)
        elif rel in replace:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(replace[rel])
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path, out)
    return target


@pytest.fixture
def partial_release(release_root, tmp_path):
    made = []

    def make(skip: str = "", replace: dict[str, bytes] | None = None) -> Path:
        target = tmp_path / f"partial{len(made)}"
        made.append(target)
        return mirror(release_root, target, skip, replace)

    yield make
    for target in made:
        shutil.rmtree(target, ignore_errors=True)
