"""How a job ends, for the command line and for compare's worker processes alike: a user error is one line on
stderr and exit status 2, without a traceback; SIGINT exits 130 and SIGTERM 143, with one line saying what was
kept; anything else is a bug and keeps its traceback."""

from __future__ import annotations

import _thread
import signal
import sys
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from itemvec.errors import Interrupted, ItemvecError
from itemvec.outputs import remove_temporaries


def _on_signal(signum, frame) -> None:
    """SIGINT / SIGTERM: unwind with Interrupted, so that temporary outputs are removed and a checkpoint is
    reported. Installed explicitly (a shell starts background jobs with SIGINT ignored, which would let
    `kill -INT` be dropped); later signals are ignored while the first one unwinds."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Interrupted(signum)


def _redeliver(previous: Callable[[Any], object], unraisable) -> None:
    """``sys.unraisablehook`` while a job runs (``previous``: the hook it replaced, for anything else). A
    signal's handler runs at the main thread's next bytecode, and when that is inside a callback from C (numba
    compiling a kernel calls llvmlite's object cache from LLVM), the Interrupted it raises cannot propagate: it
    is printed as "Exception ignored" and dropped, and the job would go on as if nothing had been pressed. Here
    it is delivered again (``_thread.interrupt_main``, from a thread, a moment later), with the handlers put
    back, until it lands outside such a callback."""
    exc = unraisable.exc_value
    if not isinstance(exc, Interrupted) or threading.current_thread() is not threading.main_thread():
        previous(unraisable)
        return
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    threading.Timer(0.02, _thread.interrupt_main, (exc.signum,)).start()


def _os_message(exc: OSError) -> str:
    cause = exc.strerror or str(exc)
    return f"{exc.filename}: {cause}" if exc.filename is not None else cause


def run_guarded(job: Callable[[], object], *, report_interrupt: bool = True) -> int:
    """Run ``job`` with the signal handlers installed; returns the exit status (after printing one line for a
    user error or an interrupt). ``report_interrupt=False``: a worker whose parent reports the interrupt."""
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    hook = sys.unraisablehook
    sys.unraisablehook = partial(_redeliver, hook)
    try:
        return _ended(job, report_interrupt)
    finally:
        sys.unraisablehook = hook
        remove_temporaries()  # whatever a signal interrupted half-way


def _ended(job: Callable[[], object], report_interrupt: bool) -> int:
    try:
        result = job()
    except Interrupted as exc:
        if report_interrupt:
            print(f"interrupted ({exc}): {exc.kept or 'no partial outputs were left'}", file=sys.stderr)
        return exc.exit_code
    except (ItemvecError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except MemoryError as exc:
        print(f"error: out of memory ({exc or 'an allocation failed'}); lower dim or batch_size, or use a machine "
              "with more memory", file=sys.stderr)
        return 2
    except OSError as exc:
        # Disk full, a read-only folder, no permission: the environment's to fix, and outputs stay atomic.
        print(f"error: {_os_message(exc)}", file=sys.stderr)
        return 2
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    except Exception as exc:
        # Usage errors of the command-line parser (click's, vendored in recent typer): one line, as ours.
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            print(f"error: {exc.format_message()}", file=sys.stderr)
            return exc.exit_code
        if type(exc).__name__ == "Abort":
            return 130
        raise
    return result if isinstance(result, int) and not isinstance(result, bool) else 0
