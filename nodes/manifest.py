"""NeMo-style JSONL manifests: one JSON object per line.

Readers report a malformed line by file and line number; writers are atomic (temp file +
rename) or append whole lines with a flush, so an interrupted job never leaves a torn manifest
that a re-run would mistake for finished work.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from dragoman.nodes.errors import DragomanError


class ManifestError(DragomanError):
    """A manifest that is missing or has a line that is not a JSON object."""


def iter_manifest(path: str | os.PathLike, skip_bad: bool = False, bad: list | None = None) -> Iterator[dict]:
    """Yield each line's object. With skip_bad, malformed lines are skipped and appended to `bad`
    as (line_number, reason); otherwise the first one raises ManifestError."""
    p = Path(path)
    if not p.is_file():
        raise ManifestError(f"{p}: no such manifest file")
    with p.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("not a JSON object")
            except ValueError as err:
                reason = str(err).splitlines()[0]
                if not skip_bad:
                    raise ManifestError(f"{p}:{number}: not a JSON object line ({reason})") from None
                if bad is not None:
                    bad.append((number, reason))
                continue
            yield row


def read_manifest(path: str | os.PathLike, skip_bad: bool = False, bad: list | None = None) -> list[dict]:
    return list(iter_manifest(path, skip_bad=skip_bad, bad=bad))


def write_manifest(path: str | os.PathLike, rows: Iterable[dict]) -> Path:
    """Write all rows atomically."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return p


def drop_torn_tail(path: str | os.PathLike) -> bool:
    """Cut a last line that a killed writer left without its newline (True if one was cut), so
    the next append starts on a line of its own instead of gluing onto the torn one."""
    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        return False
    with p.open("rb+") as fh:
        data = fh.read()
        if data.endswith(b"\n"):
            return False
        fh.truncate(data.rfind(b"\n") + 1)
    return True


def append_row(path: str | os.PathLike, row: dict) -> None:
    """Append one complete line and flush it (resumable jobs call this per finished item)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
