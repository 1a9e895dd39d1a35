"""Progress that fits where it is shown: a tqdm bar on a terminal; in a log or a pipe (no terminal) one line per
stage when it ends, and the trainer's one line per epoch, instead of thousands of carriage-return frames."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm


class LineProgress:
    """The part of tqdm's interface itemvec uses, writing one line to stderr when the stage ends."""

    def __init__(self, total: float | None, desc: str, unit: str, initial: float = 0, unit_scale: bool = False):
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.unit_scale = unit_scale
        self.postfix: dict = {}
        self.started = time.perf_counter()
        self.closed = False

    def update(self, n: float = 1) -> None:
        self.n += n

    def set_postfix(self, refresh: bool = True, **values) -> None:
        self.postfix = values

    def set_description(self, desc: str) -> None:
        self.desc = desc

    def _amount(self, n: float) -> str:
        if self.unit_scale and self.unit == "B":
            return f"{n / 1e6:,.1f} MB"
        return f"{n:,.0f} {self.unit}{'' if n == 1 else 's'}"

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        extra = "".join(f", {key} {value}" for key, value in self.postfix.items())
        print(f"{self.desc}: {self._amount(self.n)} in {time.perf_counter() - self.started:.1f} s{extra}",
              file=sys.stderr, flush=True)

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()


def on_terminal() -> bool:
    return sys.stderr.isatty()


def progress_bar(*, total: float | None, desc: str, unit: str, enabled: bool = True, initial: float = 0,
                 unit_scale: bool = False):
    """A progress bar for one stage: tqdm on a terminal, a :class:`LineProgress` elsewhere, nothing when not
    ``enabled``."""
    if not enabled or on_terminal():
        return tqdm(total=total, initial=initial, desc=desc, unit=unit, unit_scale=unit_scale, disable=not enabled,
                    file=sys.stderr, mininterval=0.5)
    return LineProgress(total, desc, unit, initial=initial, unit_scale=unit_scale)
