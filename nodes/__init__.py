"""dragoman.nodes: the stages of the speech-to-speech pipeline, one node per file.

Importing this package is cheap (no torch, no NeMo): node classes are found through
`dragoman.nodes.registry` and imported on first use.
"""
from dragoman.nodes.errors import DragomanError

__all__ = ["DragomanError", "register_with_nemo"]


def register_with_nemo() -> None:
    """Allow NeMo 3.0 to instantiate and restore dragoman classes (see `nemo_interop`)."""
    from dragoman.nodes.nemo_interop import register_with_nemo as _register

    _register()
