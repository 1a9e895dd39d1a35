"""The ``itemvec`` command's entry point (and ``python -m itemvec``'s): settings that the libraries read once,
when they load, made before anything imports them; then the command line (``itemvec.cli``).

- ``OPENBLAS_THREAD_TIMEOUT=4``: numpy's OpenBLAS keeps its worker threads spinning for 2^28 cycles (about
  0.1 s) after every threaded call, taking the second core from the numba kernel that follows. A model that
  alternates its kernel with a matrix product (``bpr``'s steps and per-epoch scoring) trained more than twice
  as slowly on two cores; 2^4 cycles let the workers sleep at once (BENCHMARKS.md, issue 17).
- ``ARROW_DEFAULT_MEMORY_POOL=system`` for every command but ``prepare``: mimalloc, Arrow's default, keeps the
  pages of the tables a process has read and freed (opening and checking a DATA_DIR left a training process
  about 25 MB larger at MovieLens latest-small size); ``prepare``, whose large tables reuse those pages, was
  10% slower at Books size with the C library's allocator and keeps mimalloc.

A value the user has set is left as it is. A script that runs itemvec's functions calls ``configure``: before
it imports numpy or pyarrow for its own process, or (the benchmarks) before ``compare``, whose model processes
inherit the settings while the script's own process (the peers') keeps the libraries' defaults.
"""

from __future__ import annotations

import os
import sys


def configure(command: str) -> None:
    """Set this process's library settings for the itemvec command ``command`` (see the module docstring)."""
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    if command != "prepare":
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


def command_of(argv: list[str]) -> str:
    """The command of an ``itemvec`` command line (``argv`` without the program): its first word that is not
    an option ("" for none); the command line has no options before the command that take a value."""
    return next((word for word in argv if not word.startswith("-")), "")


def main() -> None:
    configure(command_of(sys.argv[1:]))
    from itemvec.cli import main as command_line

    command_line()
