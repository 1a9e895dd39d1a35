"""Settings chosen on validation: the search spaces the models declare and the seeded random search that
`compare --tune N` runs over them.

A model class declares ``search_space``: setting name → a :class:`Uniform`, :class:`LogUniform`,
:class:`IntRange` or :class:`OneOf`. ``trials(space, n, seed)`` gives ``n`` sets of overrides: the first is
empty (the settings as configured: the defaults plus any ``--set``), the others seeded random draws (Bergstra &
Bengio 2012: random search finds good settings with few trials when only a few settings matter). Each trial is
trained on the train part and scored on the **validation** part; the test part is never looked at until the
chosen settings are trained and evaluated as an ordinary run.

What a trial is scored on (``--tune-on``): the item-item default is NDCG@10 on validation (the top-10 columns
were where the peers led); the user-item default is RMSE for explicit-rating models and NDCG@10 for implicit
ones. Lower is better for ``rmse`` and ``mae``, higher for the rest.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from itemvec.errors import ConfigError


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float

    def draw(self, rng: np.random.Generator) -> float:
        return _round(rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class LogUniform:
    low: float
    high: float

    def draw(self, rng: np.random.Generator) -> float:
        return _round(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    log: bool = False

    def draw(self, rng: np.random.Generator) -> int:
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))
            return int(min(self.high, max(self.low, math.floor(value))))
        return int(rng.integers(self.low, self.high + 1))


@dataclass(frozen=True)
class OneOf:
    values: tuple[Any, ...]

    def draw(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.integers(len(self.values)))]


Space = Uniform | LogUniform | IntRange | OneOf


def _round(value: float) -> float:
    """Three significant digits: settings a person can read and type again."""
    return float(f"{value:.3g}")


def trials(space: dict[str, Space], n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` sets of overrides: {} (the configured settings) first, then distinct seeded random draws."""
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = [{}]
    attempts = 0
    while len(out) < n and space and attempts < 100 * n:
        attempts += 1
        draw = {name: dimension.draw(rng) for name, dimension in sorted(space.items())}
        if draw not in out:
            out.append(draw)
    return out


def model_seed(name: str, seed: int = 0) -> int:
    """The search's seed for one model: the same trials for the same model on every run and machine."""
    return zlib.crc32(name.encode()) ^ seed


LOWER_IS_BETTER = ("rmse", "rmse_scaled", "mae")


def default_metric(data_kind: str, model_kind: str | None) -> str:
    if data_kind == "pairs":
        return "ndcg_at_10"
    return "rmse" if model_kind == "explicit" else "ndcg_at_10"


def better(metric: str, value: float | None, than: float | None) -> bool:
    """Is ``value`` a better figure of ``metric`` than ``than`` (None: no figure, worse than any)?"""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if than is None:
        return True
    return value < than if metric in LOWER_IS_BETTER else value > than


def check_metric(metric: str, figures: dict[str, Any]) -> None:
    if metric not in figures:
        known = ", ".join(sorted(k for k, v in figures.items() if isinstance(v, int | float) and not k.endswith("_se")
                                 and k not in ("ranking_queries", "k")))
        raise ConfigError(f"--tune-on: {metric!r} is not a validation figure of this data; known: {known}")


def settings_text(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "as configured"
