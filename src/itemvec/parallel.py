"""Thread counts for one block of work: numba's and torch's are process-wide settings, so whoever changes them
restores them (``thread_limit``), and one BLAS thread (``one_blas_thread``). The lowest layer: it imports
neither graph/ nor models/."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def thread_limit(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` numba threads (0: all cores) and, when torch is already imported,
    ``threads`` torch threads (0: torch's own default); both are restored afterwards. torch is never
    imported here, so a numba model's process does not load it."""
    import numba

    previous = numba.get_num_threads()
    # numba.config sets its attributes at import time; its type information does not list them.
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS if threads <= 0  # type: ignore[attr-defined]
                          else min(threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    torch = sys.modules.get("torch")
    previous_torch = torch.get_num_threads() if torch is not None else None
    if torch is not None and threads > 0:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        numba.set_num_threads(previous)
        if torch is not None:
            torch.set_num_threads(previous_torch)


def one_blas_thread() -> Any:
    """Limit numpy's BLAS to one thread (threadpoolctl): as a context, for its block; called alone, for the rest
    of the process (the limiter it returns can restore the previous counts). For code whose small products sit
    between numba's parallel kernels or run on many threads at once, where BLAS's own threads only spin."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    return threadpool_limits(1, user_api="blas")
