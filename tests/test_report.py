"""Tests for itemvec.evaluate.report: files, self-contained HTML, table formatting, escaping, speed.

Curves are synthetic (a smooth ROC, its PR and threshold counterparts); one model has a learning-curve
history and one, a baseline, has none. The report is written once per module to keep the suite fast.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from itemvec.evaluate.protocol import ITEM_ITEM, ItemItemProtocol
from itemvec.evaluate.report import _downsample, plot_model, plot_overlay, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
POLICY = "Pairs touching a product unseen in training score 0 (a tie with everything), not dropped: <all>."


class Pairs(ItemItemProtocol):
    """The item-item report with a policy of its own: markup in it must come out escaped in HTML."""

    policy = POLICY
    baseline_note = "degree = product of the two products' training degrees"


def _curves(n: int = 500, power: float = 3.0, history: bool = True) -> dict:
    """A concave ROC tpr = 1 - (1 - fpr)**power and matching PR and threshold curves."""
    fpr = np.linspace(0.0, 1.0, n)
    tpr = 1.0 - (1.0 - fpr) ** power
    thresholds = np.linspace(0.0, 1.0, n)
    curves = {
        "roc": {"fpr": fpr, "tpr": tpr, "auc": float(1.0 - 1.0 / (power + 1.0))},
        "pr": {"precision": np.linspace(0.5, 1.0, n), "recall": np.linspace(1.0, 0.0, n), "ap": 0.8},
        "threshold": {"thresholds": thresholds, "precision": 0.5 + 0.5 * thresholds,
                      "recall": 1.0 - thresholds ** 2, "axis": "probability (sigmoid of the score)"},
        "history": [],
    }
    if history:
        curves["history"] = [
            {"step": 100 * k, "epoch": 0.25 * k, "val_auc": 0.6 + 0.05 * k, "loss": 1.0 / (k + 1), "seconds": k}
            for k in range(1, 7)
        ]
    return curves


ROWS = [
    {"model": "mf", "auc": 0.93, "auc_seen": 0.95, "auc_degree": 0.81, "ap": 0.92, "recall_at_10": 0.12,
     "ndcg_at_10": 0.08, "train_seconds": 12.34, "peak_rss_mb": 850.4, "n_unseen_pairs": 120,
     "n_test_pairs": 2000, "epochs": 5, "config": {"dim": 32, "lr": 0.01}},
    {"model": "degree", "auc": 0.88, "auc_seen": None, "auc_degree": 0.5, "ap": 0.9512, "recall_at_10": 0.02,
     "ndcg_at_10": float("nan"), "train_seconds": 0.2, "peak_rss_mb": 300.0},
]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    out = tmp_path_factory.mktemp("report")
    curves = {"mf": _curves(power=4.0), "degree": _curves(power=2.0, history=False)}
    context = {
        "title": "Test report",
        "data_dir": "/data/demo",
        "manifest": {"n_items": 12345, "unique_pairs": 54321,
                     "pairs_per_part": {"train": 50000, "validation": 2000, "test": 2321},
                     "negatives": {"validation_negatives": 2000, "test_negatives_degree": 2321}},
        "command": "itemvec compare runs/* --out report",
        "created": "2024-01-02 03:04",
    }
    return out, write_report(out, ROWS, curves, context, protocol=Pairs())


def _table_rows(html_text: str) -> dict[str, list[str]]:
    """Model name -> the cell contents (markup included) of its row in the HTML table."""
    body = html_text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", body):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)
        rows[re.sub(r"<[^>]+>", "", cells[0])] = cells
    return rows


def test_files_exist_and_are_png(report):
    out, written = report
    assert written["markdown"] == out / "report.md" and written["html"] == out / "report.html"
    expected_png = {"roc_all", "pr_all", "learning_all", "mf_threshold", "mf_roc", "mf_learning_curve",
                    "degree_threshold", "degree_roc"}
    assert set(written) == expected_png | {"markdown", "html"}
    for name in expected_png:
        assert written[name] == out / f"{name}.png"
        assert written[name].read_bytes()[:8] == PNG_MAGIC
    # The baseline has no history, so no learning curve of its own.
    assert not (out / "degree_learning_curve.png").exists()


def test_html_is_self_contained(report):
    _, written = report
    page = written["html"].read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 8
    assert 'src="http' not in page and "<script" not in page.lower()
    assert "<link" not in page.lower()  # CSS is inline too
    assert "<style>" in page


def test_markdown_references_pngs_by_relative_name(report):
    out, written = report
    text = written["markdown"].read_text(encoding="utf-8")
    referenced = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert set(referenced) == {p.name for k, p in written.items() if k not in ("markdown", "html")}
    assert all((out / name).exists() for name in referenced)
    assert "```json" in text and '"dim": 32' in text


def test_order_of_sections(report):
    _, written = report
    for text in (written["markdown"].read_text(encoding="utf-8"), written["html"].read_text(encoding="utf-8")):
        positions = [text.index(marker) for marker in
                     ("Test report", "Products: 12,345", "Evaluation policy", "AUC degree-matched",
                      "ROC curves of all models", "Model: mf", "Model: degree")]
        assert positions == sorted(positions)


def test_table_values_summary_and_policy(report):
    _, written = report
    md = written["markdown"].read_text(encoding="utf-8")
    page = written["html"].read_text(encoding="utf-8")
    # Policy verbatim in Markdown, escaped in HTML.
    assert POLICY in md
    assert "&lt;all&gt;" in page and "<all>" not in page
    for text in (md, page):
        for value in ("0.9300", "0.8800", "0.8100", "0.5000", "0.9512", "12.3", "850", "300",
                      "120 of 2,000", "Unique pairs: 54,321", "train 50,000", "test degree-matched 2,321"):
            assert value in text, value
    rows = _table_rows(page)
    assert list(rows) == ["mf", "degree"]  # order as given
    assert [re.sub(r"<[^>]+>", "", cell) for cell in rows["mf"]] == [
        "mf", "0.9300", "0.9500", "\u2013", "\u2013", "0.8100", "0.9200", "0.1200", "0.0800", "12.3", "\u2013", "850",
        "\u2013", "120 of 2,000"]


def test_bold_marks_the_best_value(report):
    _, written = report
    rows = _table_rows(written["html"].read_text(encoding="utf-8"))
    bold = {model: [k for k, cell in enumerate(cells) if "<strong>" in cell] for model, cells in rows.items()}
    # Columns: 1 AUC, 2 seen, 3 unseen, 4 cold, 5 degree, 6 AP, 7 R@10, 8 NDCG, 9 seconds (lowest wins),
    # 10 CPU seconds, 11 train MB, 12 eval MB, 13 unseen pairs. auc_seen and ndcg have a single value each, so
    # nothing to compare; MB and unseen pairs are never bolded.
    assert bold == {"mf": [1, 5, 7], "degree": [6, 9]}
    md = written["markdown"].read_text(encoding="utf-8")
    assert "**0.9512**" in md and "**0.2**" in md and "**0.9300**" in md
    assert "**0.8800**" not in md and "**12.3**" not in md


def test_missing_values_render_as_dash(report):
    _, written = report
    rows = _table_rows(written["html"].read_text(encoding="utf-8"))
    cells = [re.sub(r"<[^>]+>", "", cell) for cell in rows["degree"]]
    assert cells[2] == "\u2013"  # None
    assert cells[8] == "\u2013"  # NaN
    assert cells[13] == "\u2013"  # key missing
    md_line = next(line for line in written["markdown"].read_text(encoding="utf-8").splitlines()
                   if line.startswith("| degree"))
    assert md_line.count("\u2013") == 7  # and auc_unseen, auc_cold, CPU s, eval MB, absent from both rows


def test_ties_on_the_displayed_value_are_all_bold(tmp_path):
    rows = [{"model": "a", "auc": 0.91234}, {"model": "b", "auc": 0.91231}, {"model": "c", "auc": 0.5}]
    md = write_report(tmp_path, rows, {}, {}, protocol=ITEM_ITEM)["markdown"].read_text(encoding="utf-8")
    assert md.count("**0.9123**") == 2 and "**0.5000**" not in md


def test_html_escapes_names_and_files_stay_inside(tmp_path):
    name = "<b>x</b>"
    rows = [{"model": name, "auc": 0.7, "config": {"note": "<i>"}}]
    # Only the ROC curve: one plot per file-name path is enough here, and keeps the test fast.
    written = write_report(tmp_path, rows, {name: {"roc": _curves(n=50)["roc"]}}, {"title": "A & B"},
                           protocol=ITEM_ITEM)
    page = written["html"].read_text(encoding="utf-8")
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<i>" not in page and "A &amp; B" in page
    # "/" in the name must not create a directory; every PNG lands directly in the output folder.
    pngs = [p for k, p in written.items() if k not in ("markdown", "html")]
    assert len(pngs) == 2 and all(p.parent == tmp_path for p in pngs)
    md = written["markdown"].read_text(encoding="utf-8")
    assert "<b>" not in md and r"\<b\>x\</b\>" in md


def test_missing_curves_are_skipped(tmp_path):
    assert plot_model(tmp_path, "empty", {}) == {}
    only_roc = plot_model(tmp_path, "r", {"roc": _curves()["roc"], "history": []})
    assert set(only_roc) == {"roc"}
    assert plot_overlay(tmp_path, {"empty": {}}) == {}
    written = write_report(tmp_path / "rep", [{"model": "empty"}], {}, {}, protocol=ITEM_ITEM)
    assert set(written) == {"markdown", "html"}
    assert "No curves were recorded" in written["markdown"].read_text(encoding="utf-8")


def test_mismatched_curve_lengths_are_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="bad roc.*'fpr' has 3 points but 'tpr' has 2"):
        plot_model(tmp_path, "bad", {"roc": {"fpr": [0, 0.5, 1], "tpr": [0, 1]}})


def test_downsample_keeps_endpoints_and_bounds_size():
    x = np.linspace(0, 1, 1_000_001)
    y = np.sqrt(x)
    xs, ys = _downsample(x, y, 2000)
    assert xs.size <= 2000 and xs[0] == 0 and xs[-1] == 1 and ys[-1] == 1
    assert np.all(np.diff(xs) > 0)  # a subsequence, in order
    # The steep start keeps detail: arc-length sampling puts points near 0, not only every 500th.
    assert np.count_nonzero(xs < 0.001) > 10
    xs, ys = _downsample(np.array([0.0, np.inf, 1.0]), np.array([0.0, 1.0, 1.0]))
    assert xs.tolist() == [0.0, 1.0]


def test_large_curves_plot(tmp_path):
    # Speed lives in benchmarks, not in timed tests (DESIGN.md): this checks that a 10^6-point curve plots
    # at all; _downsample's bound is tested above.
    n = 1_000_000
    curves = _curves(n=n)
    per_model = plot_model(tmp_path, "big", curves)
    overlays = plot_overlay(tmp_path, {"big": curves})
    assert len(per_model) == 3 and len(overlays) == 3
