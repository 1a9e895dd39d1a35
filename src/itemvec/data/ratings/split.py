"""The train / validation / test split of the ratings (``--split``; ``split_ratings``).

- ``random`` (seeded): ``test_fraction`` of all ratings, then ``validation_fraction`` of the rest.
- ``temporal``: per user, the latest ``test_fraction`` of the user's ratings, at least one when the user has two
  or more, then the latest ``validation_fraction`` of the remainder; ties in time are broken by item id.
- ``files``: train and test exactly as two given files; validation carved from train, seeded, when
  ``validation_fraction`` > 0.
"""

from __future__ import annotations

import numpy as np

from itemvec.errors import ConfigError

SPLITS = ("random", "temporal", "files")
PARTS = ("train", "validation", "test")  # the part codes 0, 1, 2
DEFAULT_TEST_FRACTION = 0.2
DEFAULT_VALIDATION_FRACTION = 0.05  # random and temporal; 0 for files


def _round_half_up(x: np.ndarray | float) -> np.ndarray:
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


def split_ratings(user: np.ndarray, timestamp: np.ndarray, kind: str, *, test_fraction: float = DEFAULT_TEST_FRACTION,
                  validation_fraction: float = DEFAULT_VALIDATION_FRACTION, seed: int = 0,
                  file_part: np.ndarray | None = None) -> np.ndarray:
    """The part of each rating: (n,) int8, 0 train, 1 validation, 2 test.

    ``random``: a seeded permutation; the first ``round(n * test_fraction)`` go to test, then
    ``round(rest * validation_fraction)`` to validation. ``temporal``: per user, by (timestamp, then position in
    the input, so callers order ties), the latest ``round(n_u * test_fraction)`` ratings go to test (at least one
    when the user has two or more and test_fraction > 0, never all), then the latest
    ``round(rest_u * validation_fraction)`` of the rest to validation (never the last train rating).
    ``files``: ``file_part`` (0 train / 2 test) as given; validation drawn from train, seeded.
    """
    n = len(user)
    part = np.zeros(n, dtype=np.int8)
    rng = np.random.default_rng(seed)
    if kind == "random":
        order = rng.permutation(n)
        n_test = int(_round_half_up(n * test_fraction))
        rest = order[n_test:]
        n_val = int(_round_half_up(len(rest) * validation_fraction))
        part[order[:n_test]] = 2
        part[rest[:n_val]] = 1
    elif kind == "temporal":
        user = np.asarray(user, dtype=np.int64)
        order = np.lexsort((np.arange(n), np.asarray(timestamp), user))
        sorted_user = user[order]
        n_users = int(user.max()) + 1 if n else 0
        counts = np.bincount(user, minlength=n_users)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        from_end = counts[sorted_user] - 1 - (np.arange(n) - starts[sorted_user])
        n_test_u = _round_half_up(counts * test_fraction)
        if test_fraction > 0:
            n_test_u = np.where(counts >= 2, np.clip(n_test_u, 1, np.maximum(counts - 1, 1)), 0)
        rest = counts - n_test_u
        n_val_u = np.minimum(_round_half_up(rest * validation_fraction), np.maximum(rest - 1, 0))
        sorted_part = np.where(from_end < n_test_u[sorted_user], 2,
                               np.where(from_end < (n_test_u + n_val_u)[sorted_user], 1, 0)).astype(np.int8)
        part[order] = sorted_part
    elif kind == "files":
        if file_part is None:
            raise ValueError("split 'files' needs file_part")
        part[:] = file_part
        train = np.flatnonzero(part == 0)
        n_val = int(_round_half_up(len(train) * validation_fraction))
        part[train[rng.permutation(len(train))[:n_val]]] = 1
    else:
        raise ConfigError(f"--split: expected one of {', '.join(SPLITS)}, got {kind!r}")
    return part
