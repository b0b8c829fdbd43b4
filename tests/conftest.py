"""Shared test setup.

Triton kernels run on CPU tensors through Triton's interpreter; the variable must be set before
triton is first imported, so it is set here, for the whole session, when no GPU is present.
"""
import os

try:
    import torch

    _has_cuda = torch.cuda.is_available()
except Exception:  # pragma: no cover - torch is a hard dependency
    _has_cuda = False

if not _has_cuda:
    os.environ.setdefault("TRITON_INTERPRET", "1")
