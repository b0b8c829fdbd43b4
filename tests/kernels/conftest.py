"""Kernel tests run torch on one CPU thread.

Their tensors are tiny (a 2-layer, 64-wide model; single rows), so a second thread only adds
synchronisation, and on a loaded 2-core machine the thread pool's waits dominate: this folder
took 62 s with torch's default 2 threads and 22 s with one, measured back to back under the same
load. The previous setting is restored after each test.
"""
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_cpu_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
