"""Errors a person can act on: the CLI prints these as one line, without a traceback."""


class ItemvecError(Exception):
    """Base class for errors that are the user's to fix (bad input, bad settings)."""


class InputError(ItemvecError):
    """An input file is missing, empty, or has too many bad records."""


class ConfigError(ItemvecError):
    """A setting is unknown or has a value of the wrong kind."""
