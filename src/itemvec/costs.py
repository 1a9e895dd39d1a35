"""What a stage of work cost, measured honestly: wall seconds, CPU seconds (every thread of the process: numba,
BLAS and torch threads included), the peak resident memory within the stage (not since the process began),
and the machine's load average, so that a figure made on a busy machine can be told from a slow model.

    with Cost() as cost:
        model.fit(...)
    cost.record("train")  # {"train_seconds": ..., "train_cpu_seconds": ..., "train_peak_rss_mb": ..., ...}

The peak is sampled: a thread reads the process's resident set (/proc/self/statm) every ``interval``
seconds, and the kernel's own high-water mark (ru_maxrss) counts too when it rose during the stage. Where
/proc is absent (not Linux) only the high-water mark is used.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from pathlib import Path
from typing import Any

_STATM = Path("/proc/self/statm")
_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20 if hasattr(os, "sysconf") else 4096 / 2**20


def rss_mb() -> float | None:
    """This process's resident memory now, in MB (None where /proc is absent)."""
    try:
        return int(_STATM.read_text().split()[1]) * _PAGE_MB
    except (OSError, ValueError, IndexError):
        return None


def max_rss_mb() -> float:
    """The process's resident high-water mark so far, in MB (Linux reports ru_maxrss in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load_average() -> float | None:
    """The machine's 1-minute load average (None where the system does not say)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


class Cost:
    """A context manager that measures the block it wraps (see the module docstring)."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.wall = self.cpu = 0.0
        self.peak_mb = 0.0
        self.load: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            now = rss_mb()
            if now is not None and now > self.peak_mb:
                self.peak_mb = now

    def __enter__(self) -> Cost:
        self._high_before = max_rss_mb()
        self.peak_mb = rss_mb() or 0.0
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()
        self._thread = threading.Thread(target=self._sample, name="itemvec-cost", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall = time.perf_counter() - self._wall0
        self.cpu = time.process_time() - self._cpu0
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        now = rss_mb()
        if now is not None:
            self.peak_mb = max(self.peak_mb, now)
        high = max_rss_mb()
        if high > self._high_before:  # the kernel saw a new high-water mark inside the block: it is this block's
            self.peak_mb = max(self.peak_mb, high)
        self.load = load_average()

    def record(self, stage: str) -> dict[str, Any]:
        """The figures under ``<stage>_seconds``, ``<stage>_cpu_seconds``, ``<stage>_peak_rss_mb`` and
        ``<stage>_load_average``."""
        return {f"{stage}_seconds": round(self.wall, 3), f"{stage}_cpu_seconds": round(self.cpu, 3),
                f"{stage}_peak_rss_mb": round(self.peak_mb, 1), f"{stage}_load_average": self.load}
