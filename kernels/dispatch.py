"""Choosing between a Triton kernel and its torch reference.

Every op in `dragoman.kernels` has a public dispatch function (`rms_norm`, `apply_rotary`, ...)
that runs the Triton launcher on CUDA tensors and the pure-torch reference everywhere else. The
reference is the CPU path, not a fallback of lesser quality: on CPU, ATen's vectorised ops are
what a Triton kernel would have to beat, and Triton only runs on CPU through its (slow)
interpreter, which the tests use to check every launcher against its reference.

Two things send a CUDA tensor to the reference anyway:

- autograd: the kernels are forward-only (they serve decoding), so a call that must build a graph
  for backward goes to the differentiable reference;
- `use_reference()`: a context that forces the torch path, so a benchmark or a test can run the
  same decode loop both ways on one GPU and compare.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

_state = threading.local()


def _forced_reference() -> bool:
    return getattr(_state, "force_reference", False)


@contextlib.contextmanager
def use_reference() -> Iterator[None]:
    """Within this block every dispatch function runs its torch reference, on any device."""
    previous = _forced_reference()
    _state.force_reference = True
    try:
        yield
    finally:
        _state.force_reference = previous


def use_triton(*tensors: torch.Tensor | None) -> bool:
    """True when the Triton launcher should run for these inputs (None entries are ignored).

    The first argument must be a tensor; the others may be None (absent optional inputs).

    Called for every op of every decoded token, so the CPU answer comes first and cheaply (a
    list-building version cost ~24 us per step of a 2-layer model, a tenth of the step).
    """
    for t in tensors:
        if t is not None and not t.is_cuda:
            return False
    if _forced_reference():
        return False
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        return False
    return True
