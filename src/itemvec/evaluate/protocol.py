"""One protocol object per data kind: how a run of that kind opens its data, trains, is scored and is reported.

Two kinds (``registry.KINDS``; ``registry.data_kind`` tells a DATA_DIR's, ``registry.run_kind`` a saved model's):
``ITEM_ITEM`` for product pairs, scored by :mod:`itemvec.evaluate.protocols`, and ``USER_ITEM`` for ratings,
scored by :mod:`itemvec.evaluate.ranking`. :func:`protocol` looks one up by kind. Each owns, for its kind:

- the data: ``open(data_dir)`` (a ``DataDir`` or ``RatingsDir``, every table checked);
- training: ``training(data)``, what a model's ``fit`` receives; ``training_size``, the size ``train.json``
  records; ``validation_function``, the validation score of the learning curve (or None);
- scoring: ``evaluate(model, data)``, a run's ``metrics.json`` and the curves it saves; ``check_size``, a run
  against the data it is opened with;
- the words of messages: ``model_words`` ("item-item"; ``a_model``: "an item-item model"), ``data_words``
  (what such a DATA_DIR holds), ``sources`` (what its models learn from) and ``command`` (the one that queries
  such a model);
- the report: ``report_columns``, ``report_notes``, ``policy``, ``baseline_note`` and ``summary_lines``; the
  command line's table (``table_columns``) and compare's progress line (``log_columns``).

:mod:`itemvec.runs` and :mod:`itemvec.evaluate.report` ask these objects and never branch on the kind. The
modules behind them are imported on first use, so that looking a protocol up (``itemvec models``) loads neither
the data nor the model stack, and a run loads only its own kind's evaluation.
"""

from __future__ import annotations

import importlib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from itemvec.errors import InputError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from itemvec.data.store import DataDir, RatingsDir
    from itemvec.data.types import Interactions, RankShare, TrainingData
    from itemvec.models.base import ItemModel, Model
    from itemvec.models.useritem.base import UserItemModel

__all__ = ["ITEM_ITEM", "PROTOCOLS", "USER_ITEM", "ItemItemProtocol", "Protocol", "UserItemProtocol", "protocol"]

# A report column: (key in a metrics row, header, kind). The kinds, as evaluate/report.py renders them:
# "quality" is higher-is-better and "error" lower-is-better (the best value bolded, and both are the metric
# columns of the command line's table); "seconds" gets the lowest bolded; "megabytes", "count" and "text" none.
Column = tuple[str, str, str]
# A validation function: the model's figure for the learning curve (itemvec.train.Trainer's ``evaluate``).
ValidationFunction = Callable[[Any], float | None]


def finite_number(value: Any) -> float | None:
    """A finite real number as float; None for None, NaN, infinities, bools and anything not a number."""
    if isinstance(value, bool) or not isinstance(value, Real | np.number):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def count_text(value: Any) -> str:
    """A count as the report writes it (``1,234``); anything not a finite number as its text."""
    number = finite_number(value)
    return str(value) if number is None else f"{number:,.0f}"


class Protocol(ABC):
    """What one data kind means for a run (module docstring). Subclasses set every attribute.

    The methods a subclass implements take ``Any`` for the model, the data and the training data here: each
    subclass names its kind's classes (``ItemModel``, ``DataDir``, ``TrainingData`` for item-item;
    ``UserItemModel``, ``RatingsDir``, ``Interactions`` for user-item)."""

    kind: str  # "pairs" or "ratings", as the registry names the kinds
    model_words: str  # "a {model_words} model"
    a_model: str  # the same with its article, as the hint at the right command says it
    data_words: str  # "{data_dir} holds {data_words}"
    sources: str  # what its models learn from, as `itemvec models` lists them
    command: str  # `itemvec {command}` queries a trained model of this kind
    report_columns: tuple[Column, ...]
    report_notes: str  # under the report's table: what each column means
    baseline_note: str  # the report's word on which models are the baselines
    log_columns: tuple[tuple[str, str], ...]  # (key, label): compare's line per finished model
    # "module:attribute", imported on first use (module docstring): the DATA_DIR class and the policy text.
    data_class: str
    policy_text: str

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind!r}>"

    @property
    def policy(self) -> str:
        """The evaluation policy in words, as the report shows it."""
        return _load(self.policy_text)

    @property
    def table_columns(self) -> list[str]:
        """The metric columns of the command line's table: the report's quality and error columns."""
        return [key for key, _, kind in self.report_columns if kind in ("quality", "error")]

    def open(self, data_dir: str | Path, *, validate: bool = True) -> DataDir | RatingsDir:
        """The DATA_DIR of this kind, every table checked on open (see itemvec.data.store); with
        ``validate=False`` only its manifest and files, each table then checked as it is read."""
        data = _load(self.data_class)(data_dir)
        return data.validate() if validate else data

    def training(self, data: DataDir | RatingsDir, share: RankShare | None = None, *,
                 validation: bool = True) -> TrainingData | Interactions:
        """What a model's ``fit`` receives: the train part of ``data``, its validation part with it (each
        DATA_DIR class builds it: ``DataDir.training``, ``RatingsDir.training``); ``share`` and
        ``validation``: a distributed rank's own rows, and whether it reads the validation part."""
        return data.training(share, validation=validation)

    @abstractmethod
    def training_size(self, training: Any) -> dict[str, int]:
        """How much ``training`` holds, as ``train.json`` records it."""

    @abstractmethod
    def validation_function(self, model: Any, training: Any, config: DataclassInstance,
                            ) -> ValidationFunction | None:
        """A function of the model giving its validation score for the learning curve, or None when the split
        has no usable validation part."""

    @abstractmethod
    def check_size(self, model: Any, data: Any, run_dir: str | Path) -> None:
        """Refuse (InputError) a model of ``run_dir`` whose catalogue (and users) differ from ``data``'s."""

    @abstractmethod
    def summary_lines(self, manifest: Mapping[str, Any]) -> list[str]:
        """The report's lines about the data of a DATA_DIR's manifest."""

    @abstractmethod
    def validation_figures(self, model: Any, data: Any) -> dict[str, Any]:
        """The figures of ``model`` on the validation part of ``data`` (what ``compare --tune`` chooses on; the
        test part is not read)."""

    @abstractmethod
    def _measure(self, model: Any, data: Any, *, ranking_queries: int | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """(metrics of ``model`` on the test part of ``data``, the curves to save: {} when none)."""

    def _about(self, data: Any, curves: dict[str, Any]) -> dict[str, Any]:
        """What the figures were measured on (and how to read them), after the timings in ``metrics.json``."""
        return {"data_dir": str(data.path), "data_fingerprint": data.fingerprint}

    def evaluate(self, model: Model, data: DataDir | RatingsDir, *, recorded: Mapping[str, Any] | None = None,
                 ranking_queries: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """(``metrics.json`` of ``model`` on the test part of ``data``, the curves to save in ``curves.npz``: {}
        when this kind draws none). ``recorded``: what the run recorded of its training (train seconds, peak
        memory, epochs), placed after the metrics; ``ranking_queries``: a cap on item-item ranking queries (None:
        until the standard errors are small enough, see ``protocols.ranking_metrics``)."""
        from itemvec.config import to_dict
        from itemvec.costs import Cost

        with Cost() as cost:
            result, curves = self._measure(model, data, ranking_queries=ranking_queries)
        # The key order of metrics.json as it has always been written: model, figures, timings, provenance.
        metrics = {"model": model.name, **result, **(recorded or {}), **cost.record("eval"),
                   **self._about(data, curves), "config": to_dict(model.config)}
        return metrics, curves


class ItemItemProtocol(Protocol):
    """Item-item models on product pairs (``prepare amazon``, ``edges``, ``sessions``)."""

    kind = "pairs"
    model_words = "item-item"
    a_model = "an item-item model"
    data_words = "product pairs"
    sources = "product pairs, sessions"
    command = "similar"
    report_columns = (
        ("model", "model", "text"),
        ("auc", "AUC", "quality"),
        ("auc_seen", "AUC seen", "quality"),
        ("auc_unseen", "AUC unseen", "quality"),
        ("auc_cold", "AUC cold", "quality"),
        ("auc_degree", "AUC degree-matched", "quality"),
        ("ap", "AP", "quality"),
        ("recall_at_10", "Recall@10", "quality"),
        ("ndcg_at_10", "NDCG@10", "quality"),
        ("train_seconds", "train s", "seconds"),
        ("train_cpu_seconds", "train CPU s", "seconds"),
        ("peak_rss_mb", "train peak MB", "megabytes"),
        ("eval_peak_rss_mb", "eval peak MB", "megabytes"),
        ("n_unseen_pairs", "unseen pairs", "count"),
    )
    report_notes = (
        "AUC: test pairs against uniformly sampled negative pairs. "
        "AUC seen: only test pairs whose products both appear in training; AUC unseen: the others; AUC cold: "
        "those whose unseen products all have metadata (the cold-start slice a side-information model can "
        "answer); each against the negatives in the same slice. "
        "AUC degree-matched: against negatives drawn to match the positives' product degrees, "
        "so popularity alone cannot win. AP: average precision. "
        "Recall@10 and NDCG@10: the held-out partner ranked among the top 10 candidates, ± the standard error "
        "(test positives are ranked until it is under 0.002, or all are). "
        "Unseen pairs: test pairs that touch a product unseen in training. "
        "train s and train CPU s: wall and CPU seconds of training (CPU counts every thread); train peak MB and "
        "eval peak MB: the largest resident memory while training and while evaluating, apart; the machine's "
        "load average during each run is in metrics.json. "
        "Bold: the best value of each column (the lowest training time)."
    )
    baseline_note = ("popularity (the degree product), adamic-adar, itemknn and rp3beta are baselines: every learned "
                     "model's figure stands beside them.")
    log_columns = (("auc", "auc"), ("auc_seen", "auc_seen"), ("auc_degree", "auc_degree"))
    data_class = "itemvec.data.store:DataDir"
    policy_text = "itemvec.evaluate.protocols:POLICY"

    def training_size(self, training: TrainingData) -> dict[str, int]:
        share = training.share  # a distributed rank's own rows are a share of the whole part
        return {"train_pairs": share.total if share.held else len(training.train)}

    def validation_function(self, model: ItemModel, training: TrainingData, config: DataclassInstance,
                            ) -> ValidationFunction | None:
        from itemvec.config import seed_of
        from itemvec.evaluate.protocols import validation_auc_function

        return validation_auc_function(model, training.validation, seed=seed_of(config))

    def check_size(self, model: ItemModel, data: DataDir, run_dir: str | Path) -> None:
        if model.n_items != data.n_items:
            raise InputError(f"{run_dir} was trained on {model.n_items} products but {data.path} has {data.n_items}")

    def summary_lines(self, manifest: Mapping[str, Any]) -> list[str]:

        lines = []
        if finite_number(manifest.get("n_items")) is not None:
            lines.append(f"Products: {count_text(manifest['n_items'])}")
        parts = manifest.get("pairs_per_part") or {}
        part_text = ", ".join(f"{name} {count_text(count)}" for name, count in parts.items())
        if finite_number(manifest.get("unique_pairs")) is not None:
            lines.append(f"Unique pairs: {count_text(manifest['unique_pairs'])}" + (f" ({part_text})" if part_text else ""))
        elif part_text:
            lines.append(f"Pairs per part: {part_text}")
        negatives = manifest.get("negatives")
        if isinstance(negatives, Mapping) and negatives:
            lines.append("Negative pairs: " + ", ".join(
                f"{_negatives_name(name)} {count_text(count)}" for name, count in negatives.items()))
        elif negatives is not None:
            lines.append(f"Negative pairs: {count_text(negatives)}")
        return lines

    def validation_figures(self, model: ItemModel, data: DataDir) -> dict[str, Any]:
        from itemvec.evaluate.protocols import evaluate_item_model

        if not len(data.pairs("validation")):
            raise InputError(f"{data.path}: no validation pairs to choose settings on; prepare it with a validation "
                             "part (--split)")
        return evaluate_item_model(model, data, part="validation", seed=0)[0]

    def _measure(self, model: ItemModel, data: DataDir, *, ranking_queries: int | None,
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
        from itemvec.evaluate.protocols import evaluate_item_model

        return evaluate_item_model(model, data, ranking_queries=ranking_queries, seed=0)

    def _about(self, data: DataDir, curves: dict[str, Any]) -> dict[str, Any]:
        return {"threshold_axis": curves["threshold"]["axis"], **super()._about(data, curves)}


def _negatives_name(name: str) -> str:
    """A negatives file's name as prepare writes it, for people: ``validation_negatives`` ->
    ``validation uniform``, ``test_negatives_degree`` -> ``test degree-matched``."""
    part, found, kind = name.partition("_negatives")
    if not found:
        return name.replace("_", " ")
    kind = kind.strip("_")
    return f"{part} " + {"": "uniform", "degree": "degree-matched"}.get(kind, kind.replace("_", " "))


class UserItemProtocol(Protocol):
    """User-item models on ratings (``prepare ratings``), explicit and implicit alike."""

    kind = "ratings"
    model_words = "user-item"
    a_model = "a user-item model"
    data_words = "ratings"
    sources = "ratings"
    command = "recommend"
    report_columns = (
        ("model", "model", "text"),
        ("rmse", "RMSE", "error"),
        ("rmse_scaled", "RMSE [0,1]", "error"),
        ("mae", "MAE", "error"),
        ("auc_per_user", "AUC per user", "quality"),
        ("auc_per_user_all_items", "AUC all items", "quality"),
        ("auc_per_user_notebook", "AUC notebook", "quality"),
        ("precision_at_10", "P@10", "quality"),
        ("recall_at_10", "R@10", "quality"),
        ("map_at_10", "MAP@10", "quality"),
        ("ndcg_at_10", "NDCG@10", "quality"),
        ("ndcg_at_10_cold", "NDCG@10 cold users", "quality"),
        ("train_seconds", "train s", "seconds"),
        ("train_cpu_seconds", "train CPU s", "seconds"),
        ("peak_rss_mb", "train peak MB", "megabytes"),
        ("eval_peak_rss_mb", "eval peak MB", "megabytes"),
    )
    report_notes = (
        "RMSE and MAE: test ratings on the data's scale; RMSE [0,1]: on ratings scaled to [0, 1] (the scale of "
        "\"PyTorch for Recommenders 101\"); explicit-rating models only. AUC per user: the probability that a "
        "relevant test item outranks a non-relevant candidate among the items with a train interaction, averaged "
        "over users; AUC all items: the same over the whole catalogue; AUC notebook: the triplet notebook's "
        "protocol (the whole catalogue, only the user's train positives excluded). P, R, MAP and NDCG at 10: "
        "the top 10 of the items with a train interaction, the user's train items excluded; NDCG@10 cold users: "
        "over the users without train history, who get the popularity ranking; each ± its standard error over the "
        "users. train s and train CPU s: wall and CPU seconds of training (CPU counts every thread); train "
        "peak MB and eval peak MB: the largest resident memory while training and while evaluating, apart; the "
        "machine's load average during each run is in metrics.json. Bold: the best value of each "
        "column (the lowest error and training time)."
    )
    baseline_note = ("global-mean and bias-baseline (explicit) and popularity, itemknn, rp3beta and ease (implicit) are "
                     "baselines: every learned model's figure stands beside them.")
    log_columns = (("rmse", "rmse"), ("auc_per_user", "auc_per_user"), ("ndcg_at_10", "ndcg@10"))
    data_class = "itemvec.data.store:RatingsDir"
    policy_text = "itemvec.evaluate.ranking:RANKING_POLICY"

    def training_size(self, training: Interactions) -> dict[str, int]:
        share = training.share  # a distributed rank's own rows are a share of the whole part
        return {"train_ratings": share.total if share.held else len(training)}

    def validation_function(self, model: UserItemModel, training: Interactions, config: DataclassInstance,
                            ) -> ValidationFunction | None:
        from itemvec.evaluate.ranking import validation_user_auc_function

        return validation_user_auc_function(training)

    def check_size(self, model: UserItemModel, data: RatingsDir, run_dir: str | Path) -> None:
        if (model.n_users, model.n_items) != (data.n_users, data.n_items):
            raise InputError(f"{run_dir} was trained on {model.n_users} users × {model.n_items} items but "
                             f"{data.path} has {data.n_users} × {data.n_items}")

    def summary_lines(self, manifest: Mapping[str, Any]) -> list[str]:

        lines = [f"Users: {count_text(manifest.get('n_users'))}, items: {count_text(manifest.get('n_items'))}, "
                 f"ratings: {count_text(manifest.get('n_ratings'))} (scale {manifest.get('rating_min')} to "
                 f"{manifest.get('rating_max')}; positives at {manifest.get('threshold')} or above)"]
        parts = manifest.get("parts") or {}
        if parts:
            lines.append("Ratings per part: " + ", ".join(f"{name} {count_text(n)}" for name, n in parts.items()))
        return lines

    def validation_figures(self, model: UserItemModel, data: RatingsDir) -> dict[str, Any]:
        from itemvec.evaluate.ranking import evaluate_user_model

        validation = data.interactions("validation", features=False)
        if not len(validation):
            raise InputError(f"{data.path}: no validation ratings to choose settings on; prepare it with "
                             "--validation-fraction above 0")
        # The user's known history here is the train part alone: the validation items are the ones to find.
        return evaluate_user_model(model, data.interactions("train", features=False), validation, k=10)

    def _measure(self, model: UserItemModel, data: RatingsDir, *, ranking_queries: int | None,
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
        from itemvec.evaluate.ranking import evaluate_user_model

        # Train and validation ratings are both the user's known history: neither is a candidate.
        result = evaluate_user_model(model, data.training(features=False), data.interactions("test", features=False),
                                     k=10)
        # The model's kind (explicit or implicit) is recorded as in model.json: registry.run_kind reads either.
        return {"kind": model.kind, **result}, {}

    def _about(self, data: RatingsDir, curves: dict[str, Any]) -> dict[str, Any]:
        return {**super()._about(data, curves), "policy": self.policy}


def _load(target: str) -> Any:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


ITEM_ITEM = ItemItemProtocol()
USER_ITEM = UserItemProtocol()
PROTOCOLS = (ITEM_ITEM, USER_ITEM)  # in registry.KINDS order
_BY_KIND = {p.kind: p for p in PROTOCOLS}


def protocol(kind: str) -> Protocol:
    """The protocol of a data kind ("pairs" or "ratings", as ``registry.data_kind`` / ``run_kind`` say)."""
    try:
        return _BY_KIND[kind]
    except KeyError:
        raise ValueError(f"unknown data kind {kind!r}; expected one of {tuple(_BY_KIND)}") from None
