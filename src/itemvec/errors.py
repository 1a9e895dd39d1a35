"""Errors a person can act on: the CLI prints these as one line, without a traceback, and exits 2."""

import signal


class ItemvecError(Exception):
    """Base class for errors that are the user's to fix (bad input, bad settings)."""


class InputError(ItemvecError):
    """An input file is missing, empty, malformed, or has too many bad records."""


class ConfigError(ItemvecError):
    """A setting is unknown or has a value of the wrong kind or out of its range."""


class OutputError(ItemvecError):
    """An output path that itemvec may not write into (the user's files), or one in use by another job."""


class Interrupted(BaseException):  # noqa: N818 - a signal, like KeyboardInterrupt, not an error
    """SIGINT or SIGTERM arrived. Raised from the signal handler the CLI installs, so that every ``finally`` and
    ``except BaseException`` on the way out cleans up; ``kept`` is set on the way by whoever knows what a
    rerun can pick up (a checkpoint, finished runs)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.kept: str | None = None

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
