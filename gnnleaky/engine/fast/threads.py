"""How the fast path uses threads, and the floating-point mode it computes in.

K models run one per thread (a pool of Python threads the engine owns; the kernels and
torch's ops release the GIL); each model's ops run on one core from start to end, so a
thread that the OS deschedules delays its own model only. A single model runs on the
calling thread. Inside the fast path torch runs on one intra-op thread: a torch op on
several threads leaves torch's OpenMP threads spinning on the cores the models need.

Denormal numbers (below ``1.2e-38`` in float32: the gradients of deep layers reach them
late in training) are flushed to zero while the engine computes: on some processors an
operation on them costs a hundred times a normal one.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import torch

from gnnleaky._validation import check_positive_int

__all__ = ["each_model", "flush_denormals", "model_threads", "single_threaded", "threads"]

T = TypeVar("T")

_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_LOCAL = threading.local()  # .threads: the fast path's threads inside model_threads()


@functools.lru_cache(maxsize=1)
def _fenv() -> tuple[Any, Any] | None:
    """C's ``fegetenv`` / ``fesetenv`` (the thread's floating-point environment), if any."""
    try:
        libc = ctypes.CDLL(None)
        return libc.fegetenv, libc.fesetenv
    except (OSError, AttributeError):
        return None


@contextlib.contextmanager
def flush_denormals() -> Iterator[None]:
    """Inside the block, this thread flushes denormal floats to zero (where the CPU
    supports it); the floating-point environment is restored afterwards.

    Example:
        >>> tiny = torch.tensor([1e-39])  # a denormal float32
        >>> with flush_denormals():
        ...     inside = float(tiny * 1.0)  # 0.0 where the CPU flushes
        >>> float(tiny * 1.0) > 0  # restored after the block
        True
    """
    fenv = _fenv()
    if fenv is None:
        yield
        return
    saved = ctypes.create_string_buffer(64)  # fenv_t is 32 bytes on x86-64 glibc
    fenv[0](saved)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        fenv[1](saved)


class single_threaded:
    """One intra-op torch thread in this thread while the block runs."""

    def __enter__(self) -> None:
        self.prev = torch.get_num_threads()
        if self.prev != 1:
            torch.set_num_threads(1)

    def __exit__(self, *exc: Any) -> None:
        if self.prev != 1:
            torch.set_num_threads(self.prev)


@contextlib.contextmanager
def model_threads(threads: int | None = None) -> Iterator[None]:
    """Inside the block, torch's own ops run on one intra-op thread while the fast path
    spreads a stack's models over ``threads`` threads (default: torch's thread count on
    entry). Use it around a training loop of a stack of K > 1 models.

    Example::

        stack = StackedGNN.from_models(models)
        with model_threads():
            for epoch in range(200):
                opt.zero_grad()
                loss_fn(stack(x, edge_index)).backward()
                opt.step()
    """
    n = torch.get_num_threads() if threads is None else threads
    check_positive_int("threads", n)
    prev = getattr(_LOCAL, "threads", None)
    _LOCAL.threads = n
    try:
        with single_threaded():
            yield
    finally:
        _LOCAL.threads = prev


def threads() -> int:
    """The threads the fast path may use here: those of :func:`model_threads`, else
    torch's thread count."""
    return getattr(_LOCAL, "threads", None) or max(1, torch.get_num_threads())


def _pool(size: int) -> ThreadPoolExecutor:
    global _POOL, _POOL_SIZE
    with _LOCK:
        if _POOL is None or _POOL_SIZE != size:
            if _POOL is not None:
                _POOL.shutdown(wait=True)
            _POOL = ThreadPoolExecutor(
                max_workers=size, thread_name_prefix="gnnleaky", initializer=_pool_thread
            )
            _POOL_SIZE = size
        return _POOL


def _pool_thread() -> None:
    # For good in the engine's own threads: one intra-op torch thread (a pool thread
    # that never set it would run oneDNN on OpenMP's default team) and no denormals.
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)


def each_model(k: int, fn: Callable[[int], T], num_threads: int | None = None) -> list[T]:
    """``[fn(0), ..., fn(k - 1)]``: one model per thread of the engine's pool when there
    are several models and threads, else one after the other on this thread."""
    n = threads() if num_threads is None else num_threads
    if k <= 1 or n <= 1:
        return [fn(i) for i in range(k)]

    def task(i: int) -> T:
        with torch.no_grad():
            return fn(i)

    return list(_pool(min(n, k)).map(task, range(k)))
