"""Errors that reach users as one line.

Every problem caused by input (a file, a graph, a checkpoint, a command-line value) raises a
`DragomanError` whose message names the input and the problem. The CLI prints it as
`dragoman: error: <message>` and exits with status 2; anything else is a bug and keeps its
traceback.
"""
from __future__ import annotations


class DragomanError(Exception):
    """A user-facing error: the message is one line naming the input and the problem."""

    def __init__(self, message: str):
        # Collapse newlines so the CLI always prints exactly one line.
        super().__init__(" ".join(str(message).split()))


class AudioError(DragomanError):
    """Missing, unreadable, empty, silent, non-finite or oversized audio."""


class GraphError(DragomanError):
    """A graph file that cannot be loaded: YAML, unknown node, bad edge, unknown override."""


class UnsafeTargetError(GraphError):
    """A `_target_` outside the registered node classes, refused without an explicit trust flag."""


class CheckpointError(DragomanError):
    """A checkpoint file or directory that is missing, corrupt or does not match the node."""
