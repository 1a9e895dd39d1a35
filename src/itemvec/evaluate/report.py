"""The comparison report: plots, a table and two pages (Markdown and self-contained HTML).

The reference study drew, for every model, precision and recall against the decision threshold, the ROC
curve and the learning curve (validation AUC against training time); this module draws those, plus
overlays of all models on one set of axes, and writes them into ``report.md`` (which references the PNGs
by relative file name) and ``report.html`` (which embeds them as base64 data URIs, with inline CSS and no
JavaScript, so the one file can be mailed or archived alone).

Three public functions: :func:`plot_model`, :func:`plot_overlay` and :func:`write_report`. What depends on
the kind of data (the table's columns and the note under it, the evaluation policy, the baseline note and the
lines about the data) comes from the data kind's protocol object (:mod:`itemvec.evaluate.protocol`); this
module only draws and renders. The curves of one model are a dict (every key optional; a missing one skips its
plot)::

    {
      "roc": {"fpr": (n,), "tpr": (n,), "auc": float},
      "pr": {"precision": (n,), "recall": (n,), "ap": float},
      "threshold": {"thresholds": (m,), "precision": (m,), "recall": (m,), "axis": str},
      "history": [{"step": int, "epoch": float, "val_auc": float, "loss": float | None,
                   "seconds": float}, ...],
    }

Curves may hold millions of points (one per distinct test score); they are thinned to at most
``_MAX_POINTS`` before plotting (:func:`_downsample`), which keeps a plot well under a second and
changes nothing a reader can see at 600 x 400 pixels.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np

# Agg renders to files only: reports are written by CLI runs and on machines without a display.
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot is imported)

from itemvec.evaluate.protocol import count_text, finite_number  # noqa: E402  (the protocol's number style)
from itemvec.outputs import safe_name, save_figure, write_text  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.typing import LegendLocType

    from itemvec.evaluate.protocol import Protocol

__all__ = ["plot_model", "plot_overlay", "write_report"]

_MAX_POINTS = 2000  # per plotted line; a 600-pixel-wide axis cannot show more
_FIGSIZE = (6.0, 4.0)  # inches
_DPI = 100
_DASH = "\u2013"  # what a missing value renders as
_DEFAULT_TITLE = "itemvec comparison report"

# How the table shows each kind of column (see itemvec.evaluate.protocol.Column): "quality" columns are
# higher-is-better and get the best value bolded, "error" lower-is-better; "seconds" gets the lowest bolded.
_DECIMALS = {"quality": 4, "error": 4, "seconds": 1, "megabytes": 0, "count": 0}


# --------------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------------


def plot_model(out_dir: Path, model: str, curves: dict) -> dict[str, Path]:
    """Draw the per-model plots of the reference study into ``out_dir``.

    Parameters
    ----------
    out_dir : directory, created if missing.
    model : the model's name; it becomes part of the file names (characters other than letters, digits,
        ``.``, ``-`` and ``_`` are replaced, see :func:`_file_stem`).
    curves : the model's curves (module docstring); every key is optional.

    Returns
    -------
    ``{"threshold": path, "roc": path, "learning_curve": path}`` with only the plots that were drawn:
    ``{model}_threshold.png`` (precision and recall against the threshold) needs ``curves["threshold"]``,
    ``{model}_roc.png`` needs ``curves["roc"]``, and ``{model}_learning_curve.png`` needs a non-empty
    ``curves["history"]`` with a validation AUC or a loss in it.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = _file_stem(model)
    written: dict[str, Path] = {}
    if curves.get("threshold"):
        written["threshold"] = _plot_threshold(out_dir / f"{stem}_threshold.png", model, curves["threshold"])
    if curves.get("roc"):
        written["roc"] = _plot_roc(out_dir / f"{stem}_roc.png", model, curves["roc"])
    history = curves.get("history") or []
    if _history_series(history, "val_auc") or _history_series(history, "loss"):
        written["learning_curve"] = _plot_learning(out_dir / f"{stem}_learning_curve.png", model, history)
    return written


def plot_overlay(out_dir: Path, curves_by_model: dict[str, dict]) -> dict[str, Path]:
    """Draw all models on shared axes into ``out_dir``.

    Parameters
    ----------
    out_dir : directory, created if missing.
    curves_by_model : model name -> that model's curves (module docstring), in legend order.

    Returns
    -------
    ``{"roc": path, "pr": path, "learning": path}`` with only the plots that have at least one model:
    ``roc_all.png`` (ROC curves, AUC in the legend), ``pr_all.png`` (precision against recall, AP in
    the legend) and ``learning_all.png`` (validation AUC against the fractional training epoch, for the
    models with a history).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}

    roc_lines = []
    for model, curves in curves_by_model.items():
        roc = curves.get("roc")
        if roc:
            x, y = _xy(roc, "fpr", "tpr", f"{model} roc")
            roc_lines.append((x, y, _with_score(model, "AUC", roc.get("auc"))))
    if roc_lines:
        written["roc"] = _draw(
            out_dir / "roc_all.png", roc_lines, title="ROC curves, all models",
            xlabel="false positive rate", ylabel="true positive rate", unit_box=True, chance_diagonal=True,
        )

    pr_lines = []
    for model, curves in curves_by_model.items():
        pr = curves.get("pr")
        if pr:
            x, y = _xy(pr, "recall", "precision", f"{model} pr")
            pr_lines.append((x, y, _with_score(model, "AP", pr.get("ap"))))
    if pr_lines:
        written["pr"] = _draw(
            out_dir / "pr_all.png", pr_lines, title="Precision-recall curves, all models",
            xlabel="recall", ylabel="precision", unit_box=True, legend_loc="lower left",
        )

    learning_lines = []
    for model, curves in curves_by_model.items():
        series = _history_series(curves.get("history") or [], "val_auc")
        if series:
            epochs, aucs = zip(*series, strict=True)
            learning_lines.append((np.asarray(epochs), np.asarray(aucs), model))
    if learning_lines:
        written["learning"] = _draw(
            out_dir / "learning_all.png", learning_lines, title="Learning curves, all models",
            xlabel="training epoch (fractional)", ylabel="validation AUC", markers=True,
            legend_loc="lower right",
        )
    return written


def _plot_threshold(path: Path, model: str, threshold: Mapping) -> Path:
    """Precision and recall against the decision threshold, on one axis (both are in [0, 1])."""
    where = f"{model} threshold"
    thresholds = _array(threshold, "thresholds", where)
    precision = _array(threshold, "precision", where)
    recall = _array(threshold, "recall", where)
    if not (thresholds.size == precision.size == recall.size):
        raise ValueError(f"{where}: thresholds, precision and recall must have one length, got "
                         f"{thresholds.size}, {precision.size} and {recall.size}")
    if thresholds.size > 1 and np.any(np.diff(thresholds) < 0):
        # Thinning by arc length (_downsample) assumes points in drawing order.
        order = np.argsort(thresholds, kind="stable")
        thresholds, precision, recall = thresholds[order], precision[order], recall[order]
    lines = [(thresholds, precision, "precision"), (thresholds, recall, "recall")]
    return _draw(path, lines, title=f"{model}: precision and recall by threshold",
                 xlabel=str(threshold.get("axis") or "decision threshold"), ylabel="precision, recall",
                 y_unit=True, legend_loc="best")


def _plot_roc(path: Path, model: str, roc: Mapping) -> Path:
    """One model's ROC curve with the chance diagonal."""
    fpr, tpr = _xy(roc, "fpr", "tpr", f"{model} roc")
    return _draw(path, [(fpr, tpr, _with_score("ROC", "AUC", roc.get("auc")))], title=f"{model}: ROC curve",
                 xlabel="false positive rate", ylabel="true positive rate", unit_box=True,
                 chance_diagonal=True)


def _plot_learning(path: Path, model: str, history: Sequence[Mapping]) -> Path:
    """Validation AUC (left axis) and training loss (right axis, when logged) against the epoch."""
    auc = _history_series(history, "val_auc")
    loss = _history_series(history, "loss")
    fig, ax = plt.subplots(figsize=_FIGSIZE, dpi=_DPI)
    try:
        handles, labels = [], []
        if auc:
            x, y = zip(*auc, strict=True)
            handles += ax.plot(x, y, marker="o", markersize=3, color="C0")
            labels.append("validation AUC")
        ax.set_ylabel("validation AUC")
        if loss:
            # Loss and AUC have unrelated scales, so the loss gets an axis of its own.
            loss_ax = ax.twinx()
            x, y = zip(*loss, strict=True)
            handles += loss_ax.plot(x, y, color="C1", linestyle="--", marker=".", markersize=3)
            labels.append("training loss")
            loss_ax.set_ylabel("training loss")
        ax.set_xlabel("training epoch (fractional)")
        ax.set_title(_mpl_text(f"{model}: learning curve"))
        ax.grid(True, alpha=0.3)
        # Below the axes: a rising AUC and a falling loss leave no corner reliably free. Explicit labels,
        # because matplotlib silently drops auto-collected labels that start with "_".
        ax.legend(handles, [_mpl_text(label) for label in labels], loc="upper center",
                  bbox_to_anchor=(0.5, -0.15), ncol=2, fontsize="small", frameon=False)
        save_figure(fig, path, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def _draw(path: Path, lines: list[tuple[np.ndarray, np.ndarray, str]], *, title: str, xlabel: str,
          ylabel: str, unit_box: bool = False, y_unit: bool = False, chance_diagonal: bool = False,
          markers: bool = False, legend_loc: LegendLocType = "lower right") -> Path:
    """One figure of labelled lines, saved as PNG and closed.

    ``lines`` holds (x, y, label) triples; each line is thinned to ``_MAX_POINTS``. ``unit_box`` fixes
    both axes to [0, 1] (ROC and PR), ``y_unit`` only the y axis. More than ten lines cycle the line
    style as well as the colour, so an eleventh model is not drawn like the first.
    """
    fig, ax = plt.subplots(figsize=_FIGSIZE, dpi=_DPI)
    try:
        handles, labels = [], []
        for k, (x, y, label) in enumerate(lines):
            x, y = _downsample(np.asarray(x, np.float64), np.asarray(y, np.float64))
            style = ("-", "--", ":", "-.")[(k // 10) % 4]
            handles += ax.plot(x, y, color=f"C{k % 10}", linestyle=style, linewidth=1.5,
                               marker="o" if markers else None, markersize=3)
            labels.append(label)
        if chance_diagonal:
            handles += ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", linewidth=1)
            labels.append("chance (AUC 0.5)")
        if unit_box:
            ax.set_xlim(0, 1)
        if unit_box or y_unit:
            ax.set_ylim(0, 1.02)
        ax.set_xlabel(_mpl_text(xlabel))
        ax.set_ylabel(_mpl_text(ylabel))
        ax.set_title(_mpl_text(title))
        ax.grid(True, alpha=0.3)
        ax.legend(handles, [_mpl_text(label) for label in labels], loc=legend_loc, fontsize="small")
        save_figure(fig, path, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def _downsample(x: np.ndarray, y: np.ndarray, max_points: int = _MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Thin a curve to at most ``max_points`` points, keeping both endpoints.

    x, y : (n,) float, in drawing order. Non-finite points (an ``inf`` threshold) are dropped first.
    Returns (m,) arrays with m <= max_points, a subsequence of the input.

    Half of the budget is spread evenly along the drawn length of the curve (in axis-normalised
    coordinates), so that a steep stretch, where few points span much of the picture, keeps its shape;
    the other half evenly by index, so that dense stretches keep their share. O(n).
    """
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.all():
        x, y = x[keep], y[keep]
    n = x.size
    if n <= max_points:
        return x, y
    span_x = float(np.ptp(x)) or 1.0
    span_y = float(np.ptp(y)) or 1.0
    arc = np.concatenate(([0.0], np.cumsum(np.hypot(np.diff(x) / span_x, np.diff(y) / span_y))))
    by_length = np.searchsorted(arc, np.linspace(0.0, arc[-1], max_points // 2))
    by_index = np.linspace(0, n - 1, max_points - max_points // 2 - 2).astype(np.int64)
    index = np.unique(np.concatenate(([0, n - 1], np.minimum(by_length, n - 1), by_index)))
    return x[index], y[index]


def _array(curve: Mapping, key: str, where: str) -> np.ndarray:
    """``curve[key]`` as a 1-D float64 array, or a ValueError that names the curve and key."""
    if key not in curve:
        raise ValueError(f"{where}: missing {key!r} (has {sorted(curve)})")
    values = np.asarray(curve[key], dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"{where}: {key!r} must be 1-D, got shape {values.shape}")
    return values


def _xy(curve: Mapping, x_key: str, y_key: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Two equally long 1-D arrays from a curve dict."""
    x, y = _array(curve, x_key, where), _array(curve, y_key, where)
    if x.size != y.size:
        raise ValueError(f"{where}: {x_key!r} has {x.size} points but {y_key!r} has {y.size}")
    return x, y


def _history_series(history: Sequence[Mapping], key: str) -> list[tuple[float, float]]:
    """(epoch, value) for the history entries where ``key`` was logged; the step when no epoch is."""
    series = []
    for entry in history:
        value = finite_number(entry.get(key))
        x = finite_number(entry.get("epoch"))
        if x is None:
            x = finite_number(entry.get("step"))
        if value is not None and x is not None:
            series.append((x, value))
    return series


def _with_score(name: str, score_name: str, score: Any) -> str:
    """A legend label: ``"mf (AUC 0.9300)"``, or the bare name when the score is missing."""
    value = finite_number(score)
    return name if value is None else f"{name} ({score_name} {value:.4f})"


def _mpl_text(text: str) -> str:
    """Text that matplotlib draws literally: a pair of "$" would otherwise start mathtext."""
    return text.replace("$", r"\$")


def _file_stem(model: str) -> str:
    """The model's name as a safe file-name stem (:func:`itemvec.outputs.safe_name`: letters, digits and
    ``.-_=`` kept, ``@`` as ``_``, anything else replaced, with a checksum of the original name appended so
    that two names that differ only there still get two files)."""
    return safe_name(model)


# --------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------


def write_report(out_dir: Path, rows: list[dict], curves_by_model: dict[str, dict],
                 context: dict, *, protocol: Protocol) -> dict[str, Path]:
    """Write ``report.md``, ``report.html`` and every plot into ``out_dir``.

    Parameters
    ----------
    out_dir : directory, created if missing.
    rows : one dict per model, in table order (not re-sorted); keys as in ``protocol.report_columns`` plus
        optional ``config`` (any JSON-able dict, shown in the model's section), ``epochs`` and ``n_test_pairs``.
        Missing keys, None and NaN render as "–".
    curves_by_model : model name -> curves (module docstring). Models with curves but no row still get a
        section, after the rows' models.
    context : optional ``title``, ``data_dir``, ``manifest`` (the DATA_DIR's manifest.json, summarised by
        ``protocol.summary_lines``), ``command`` and ``created``.
    protocol : the data kind's protocol (:mod:`itemvec.evaluate.protocol`): the table's columns
        (``report_columns``) and the note under it (``report_notes``), the evaluation policy (``policy``, shown
        verbatim), ``baseline_note`` and the lines about the data.

    Returns
    -------
    ``{"markdown": path, "html": path}`` plus one entry per PNG, keyed by its file stem
    (``"roc_all"``, ``"pr_all"``, ``"learning_all"``, ``"{model}_threshold"``, ``"{model}_roc"``,
    ``"{model}_learning_curve"``).

    The page order: title, data summary, evaluation policy, table, overlays, one section per model.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    models = [str(row.get("model")) for row in rows if row.get("model") is not None]
    models += [model for model in curves_by_model if model not in models]
    rows_by_model = {str(row["model"]): row for row in rows if row.get("model") is not None}

    headers, cells = _table(rows, protocol.report_columns)
    overlays = plot_overlay(out_dir, curves_by_model)
    per_model = {model: plot_model(out_dir, model, curves_by_model.get(model) or {}) for model in models}
    doc = _Document(
        title=str(context.get("title") or _DEFAULT_TITLE),
        summary=_summary(context, protocol),
        command=_text_or_none(context.get("command")),
        policy=_text_or_none(protocol.policy),
        baseline_note=_text_or_none(protocol.baseline_note),
        headers=headers,
        cells=cells,
        notes=protocol.report_notes,
        overlays=[(path, caption) for key, caption in (
            ("roc", "ROC curves of all models"), ("pr", "Precision-recall curves of all models"),
            ("learning", "Validation AUC against training epoch"),
        ) if (path := overlays.get(key)) is not None],
        sections=[_section(model, rows_by_model.get(model, {}), per_model[model]) for model in models],
    )
    markdown_path = out_dir / "report.md"
    html_path = out_dir / "report.html"
    write_text(markdown_path, _markdown(doc))
    write_text(html_path, _html(doc))

    written: dict[str, Path] = {"markdown": markdown_path, "html": html_path}
    for path in [*overlays.values(), *(p for plots in per_model.values() for p in plots.values())]:
        written[path.stem] = path
    return written


@dataclass(frozen=True)
class _Document:
    """Everything both renderers need, as plain text; each renderer escapes for its own format."""

    title: str
    summary: list[str]
    command: str | None
    policy: str | None
    baseline_note: str | None
    headers: list[str]
    cells: list[list[tuple[str, bool]]]  # per row, per column: (text, bold)
    notes: str
    overlays: list[tuple[Path, str]]  # (png, caption)
    sections: list[dict]  # see _section


_SECTION_PLOTS = (
    ("threshold", "Precision and recall against the decision threshold"),
    ("roc", "ROC curve"),
    ("learning_curve", "Learning curve"),
)


def _section(model: str, row: Mapping, plots: Mapping[str, Path]) -> dict:
    """One model's section: facts line, plots with captions, config as JSON (or None)."""
    facts = []
    epochs = finite_number(row.get("epochs"))
    if epochs is not None:
        facts.append(f"epochs {epochs:g}")
    seconds = finite_number(row.get("train_seconds"))
    if seconds is not None:
        facts.append(f"training {seconds:,.1f} s")
    tested = finite_number(row.get("n_test_pairs"))
    if tested is not None:
        facts.append(f"test pairs {tested:,.0f}")
    tuning = row.get("tuning")
    if isinstance(tuning, Mapping) and tuning.get("trials"):
        chosen = ", ".join(f"{k}={v}" for k, v in (tuning.get("chosen") or {}).items()) or "as configured"
        value, configured = finite_number(tuning.get("validation")), finite_number(tuning.get("configured_validation"))
        facts.append(f"settings chosen on validation {tuning.get('on')} over {len(tuning['trials'])} trials: {chosen}"
                     + (f" ({value:.4f}; as configured {configured:.4f})" if value is not None and configured is not None
                        else ""))
    config = row.get("config")
    return {
        "model": model,
        "anchor": f"model-{_file_stem(model)}",
        "facts": ", ".join(facts),
        "plots": [(plots[key], caption) for key, caption in _SECTION_PLOTS if key in plots],
        "config": None if config is None else json.dumps(config, indent=2, default=str, ensure_ascii=False),
    }


def _summary(context: Mapping, protocol: Protocol) -> list[str]:
    """Short plain-text lines about the data: where, what the protocol says of its manifest, and when."""
    lines = []
    if context.get("data_dir"):
        lines.append(f"Data directory: {context['data_dir']}")
    lines += protocol.summary_lines(context.get("manifest") or {})
    if context.get("created"):
        lines.append(f"Created: {context['created']}")
    return lines


def _table(rows: Sequence[Mapping], columns: Sequence[tuple[str, str, str]],
           ) -> tuple[list[str], list[list[tuple[str, bool]]]]:
    """Headers and (text, bold) cells, rows in the given order.

    The best value of a column is chosen on the value as displayed (rounded), so two models shown with
    the same number are both bold; a column is only bolded when at least two models have a value in it. A
    figure with a standard error in the row (``<key>_se``) is shown as ``value ± error``.
    """
    headers = [header for _, header, _ in columns]
    cells: list[list[tuple[str, bool]]] = [[] for _ in rows]
    for key, _, kind in columns:
        values = [row.get(key) for row in rows]
        if kind == "text":
            for row_cells, value in zip(cells, values, strict=True):
                row_cells.append((_DASH if value is None else str(value), False))
            continue
        decimals = _DECIMALS[kind]
        shown = [None if (v := finite_number(value)) is None else round(v, decimals) for value in values]
        present = [v for v in shown if v is not None]
        best = None
        if len(present) >= 2 and kind in ("quality", "error", "seconds"):
            best = max(present) if kind == "quality" else min(present)
        for row_cells, row, value, rounded in zip(cells, rows, values, shown, strict=True):
            if rounded is None:
                text = _DASH if value is None or _is_nan(value) else str(value)
            elif kind == "count":
                text = count_text(rounded)
                total = finite_number(row.get("n_test_pairs"))
                if total is not None:
                    text += f" of {count_text(total)}"
            else:
                text = f"{rounded:,.{decimals}f}"
                error = finite_number(row.get(f"{key}_se"))
                if error is not None:
                    text += f" ± {error:.{decimals}f}"  # the figure's standard error
            row_cells.append((text, best is not None and rounded == best))
    return headers, cells


def _is_nan(value: Any) -> bool:
    return isinstance(value, float | np.floating) and math.isnan(value)


def _text_or_none(value: Any) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value)


# --------------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------------


def _markdown(doc: _Document) -> str:
    out = [f"# {_md_escape(doc.title)}", ""]
    if doc.summary or doc.command:
        out += ["## Data", ""]
        out += [f"- {_md_escape(line)}" for line in doc.summary]
        if doc.command:
            out += ["", "Made with:", "", *_md_code_block(doc.command, "sh")]
        out.append("")
    if doc.policy:
        # Verbatim: the policy text is the project's own wording, written as Markdown prose.
        out += ["## Evaluation policy", "", doc.policy.strip(), ""]
    out += ["## Results", ""]
    out.append("| " + " | ".join(doc.headers) + " |")
    out.append("|" + "|".join([":---"] + ["---:"] * (len(doc.headers) - 1)) + "|")
    for row in doc.cells:
        out.append("| " + " | ".join(_md_cell(text, bold) for text, bold in row) + " |")
    out += ["", _md_escape(doc.notes), ""]
    if doc.baseline_note:
        out += [f"*Baseline:* {_md_escape(doc.baseline_note)}", ""]
    if doc.overlays:
        out += ["## All models", ""]
        for path, caption in doc.overlays:
            out += [f"![{_md_escape(caption)}]({path.name})", ""]
    for section in doc.sections:
        out += [f"## Model: {_md_escape(section['model'])}", ""]
        if section["facts"]:
            out += [_md_escape(section["facts"]), ""]
        if not section["plots"]:
            out += ["No curves were recorded for this model.", ""]
        for path, caption in section["plots"]:
            out += [f"![{_md_escape(caption)}]({path.name})", ""]
        if section["config"] is not None:
            out += ["Config:", "", *_md_code_block(section["config"], "json"), ""]
    return "\n".join(out).rstrip() + "\n"


def _md_escape(text: str) -> str:
    """Text that Markdown shows literally: backslash-escape the characters that start markup or break a
    table cell. Underscores inside words (``recall_at_10``) are left alone: they never mean emphasis."""
    text = re.sub(r"([\\`*|<>\[\]#$])", r"\\\1", text)
    return re.sub(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", r"\\_", text).replace("\n", " ")


def _md_cell(text: str, bold: bool) -> str:
    text = _md_escape(text)
    return f"**{text}**" if bold else text


def _md_code_block(text: str, language: str) -> list[str]:
    """A fenced block whose fence is longer than any backtick run inside the text."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{language}", text, fence]


# --------------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       max-width: 1300px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.6em; border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #eee; padding-bottom: .2em; }
.policy { white-space: pre-wrap; background: #f7f7f9; border-left: 4px solid #88a; padding: .6em 1em; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-size: .92em; }
th, td { padding: .35em .7em; border-bottom: 1px solid #e3e3e3; }
th { background: #f0f0f4; text-align: right; position: sticky; top: 0; }
th:first-child, td:first-child { text-align: left; }
td { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafafa; }
tbody tr:hover { background: #eef3ff; }
.note { color: #555; font-size: .9em; max-width: 60em; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .85em; color: #555; text-align: center; }
pre { background: #f7f7f9; padding: .6em 1em; overflow-x: auto; font-size: .85em; }
a { color: #2a5db0; }
"""


def _html(doc: _Document) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{e(doc.title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
           f"<h1>{e(doc.title)}</h1>"]
    if doc.summary or doc.command:
        out.append("<h2>Data</h2>")
        if doc.summary:
            out.append("<ul>" + "".join(f"<li>{e(line)}</li>" for line in doc.summary) + "</ul>")
        if doc.command:
            out.append(f"<p>Made with:</p><pre><code>{e(doc.command)}</code></pre>")
    if doc.policy:
        out += ["<h2>Evaluation policy</h2>", f'<p class="policy">{e(doc.policy.strip())}</p>']
    out += ["<h2>Results</h2>", '<div class="table-wrap"><table>', "<thead><tr>"]
    out += [f'<th scope="col">{e(header)}</th>' for header in doc.headers]
    out += ["</tr></thead>", "<tbody>"]
    for row, section_anchor in zip(doc.cells, _row_anchors(doc), strict=True):
        cells = []
        for k, (text, bold) in enumerate(row):
            content = f"<strong>{e(text)}</strong>" if bold else e(text)
            if k == 0 and section_anchor:
                content = f'<a href="#{e(section_anchor)}">{content}</a>'
            cells.append(f'<th scope="row">{content}</th>' if k == 0 else f"<td>{content}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out += ["</tbody>", "</table></div>", f'<p class="note">{e(doc.notes)}</p>']
    if doc.baseline_note:
        out.append(f'<p class="note"><em>Baseline:</em> {e(doc.baseline_note)}</p>')
    if doc.overlays:
        out += ["<h2>All models</h2>", _html_figures(doc.overlays)]
    for section in doc.sections:
        out.append(f'<h2 id="{e(section["anchor"])}">Model: {e(section["model"])}</h2>')
        if section["facts"]:
            out.append(f"<p>{e(section['facts'])}</p>")
        if section["plots"]:
            out.append(_html_figures(section["plots"]))
        else:
            out.append("<p>No curves were recorded for this model.</p>")
        if section["config"] is not None:
            out.append(f"<p>Config:</p><pre><code>{e(section['config'])}</code></pre>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def _row_anchors(doc: _Document) -> list[str | None]:
    """The section anchor each table row links to (rows without a model name link nowhere)."""
    anchors = {section["model"]: section["anchor"] for section in doc.sections}
    return [anchors.get(row[0][0]) for row in doc.cells]


def _html_figures(plots: Sequence[tuple[Path, str]]) -> str:
    """PNG files as inline ``<img>`` data URIs, side by side where the page is wide enough."""
    figures = []
    for path, caption in plots:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        figures.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
                       f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    return '<div class="figures">' + "".join(figures) + "</div>"
