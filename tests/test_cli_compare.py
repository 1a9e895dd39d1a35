"""The item-item CLI end to end on a tiny synthetic catalogue: train, evaluate, compare, similar."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

REQUIRED = {"model", "auc", "auc_seen", "ap", "recall_at_10", "ndcg_at_10", "train_seconds", "peak_rss_mb",
            "n_unseen_pairs"}


def cli(*args):
    return subprocess.run([sys.executable, "-m", "itemvec.cli", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    raw = root / "cat.json.gz"
    assert cli("synth", "amazon", "--products", 4000, "--seed", 2, "--out", raw, "--no-progress").returncode == 0
    result = cli("prepare", "amazon", raw, "--out", root / "data", "--seed", 2, "--no-progress")
    assert result.returncode == 0, result.stderr
    return root / "data"


def test_compare_writes_the_report(data_dir, tmp_path):
    out = tmp_path / "report"
    result = cli("compare", "--data", data_dir, "--out", out, "--models", "popularity,adamic-adar,mf,mf-bias",
                 "--set", "epochs=4", "--set", "mf.dim=16", "--no-progress")
    assert result.returncode == 0, result.stderr
    rows = json.loads((out / "metrics.json").read_text())
    assert [r["model"] for r in rows] == ["popularity", "adamic-adar", "mf", "mf-bias"]
    for row in rows:
        assert REQUIRED <= set(row), row.keys()
        assert 0.5 < row["auc"] <= 1.0
    assert rows[2]["config"]["dim"] == 16 and rows[3]["config"]["dim"] == 64 and rows[2]["epochs"] == 4
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "mf-bias" in html
    assert (out / "report.md").exists() and (out / "roc_all.png").exists()
    assert (out / "runs" / "mf" / "history.jsonl").read_text().count("\n") == 4
    assert "report:" in result.stdout and "auc" in result.stdout
    # A second compare with the same settings reuses the runs.
    again = cli("compare", "--data", data_dir, "--out", out, "--models", "popularity,mf,mf@labels=continuous",
                "--set", "epochs=4", "--set", "mf.dim=16", "--no-progress")
    assert again.returncode == 0 and "[mf] reusing" in again.stderr and "[mf@labels=continuous] training" in again.stderr
    rows = json.loads((out / "metrics.json").read_text())
    assert rows[2]["model"] == "mf@labels=continuous" and rows[2]["config"]["labels"] == "continuous"
    assert rows[2]["config"]["dim"] == 16


def test_train_evaluate_similar(data_dir, tmp_path):
    run = tmp_path / "run"
    result = cli("train", "mf-bias", "--data", data_dir, "--out", run, "--set", "epochs=1", "--no-progress")
    assert result.returncode == 0, result.stderr
    for name in ["config.toml", "model.json", "weights.npz", "history.jsonl", "metrics.json", "curves.npz",
                 "mf-bias_roc.png", "mf-bias_threshold.png", "mf-bias_learning_curve.png"]:
        assert (run / name).exists(), name
    assert not (run / "checkpoint.npz").exists()
    before = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").unlink()
    assert cli("evaluate", run).returncode == 0
    after = json.loads((run / "metrics.json").read_text())
    assert after["auc"] == pytest.approx(before["auc"])
    import pyarrow.parquet as pq

    train = pq.read_table(data_dir / "split" / "train.parquet")
    asins = pq.read_table(data_dir / "id_map.parquet")["asin"].to_pylist()
    query = asins[train["item_a"][0].as_py()]
    result = cli("similar", run, query, "-k", 5, "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)[0]
    assert found["asin"] == query and len(found["similar"]) == 5
    assert all(n["asin"] != query for n in found["similar"])
    missing = cli("similar", run, "NOT-AN-ASIN")
    assert missing.returncode == 2 and "unknown product id" in missing.stderr


def test_bad_settings_are_one_line_errors(data_dir, tmp_path):
    result = cli("train", "mf", "--data", data_dir, "--out", tmp_path / "r", "--set", "dimension=3")
    assert result.returncode == 2 and "unknown setting" in result.stderr and "Traceback" not in result.stderr
    result = cli("train", "nope", "--data", data_dir, "--out", tmp_path / "r")
    assert result.returncode == 2 and "unknown model" in result.stderr
    result = cli("compare", "--data", data_dir, "--out", tmp_path / "c", "--models", "mf", "--set", "zzz=1")
    assert result.returncode == 2 and "zzz" in result.stderr


def test_compare_sequence_models(data_dir, tmp_path):
    out = tmp_path / "seq"
    models = "popularity,skipgram,node2vec,eges,w2v-gensim,mf-seq"
    result = cli("compare", "--data", data_dir, "--out", out, "--models", models, "--set", "dim=16",
                 "--set", "walks_per_node=3", "--set", "walk_length=10", "--set", "epochs=2", "--no-progress")
    assert result.returncode == 0, result.stderr
    rows = {r["model"]: r for r in json.loads((out / "metrics.json").read_text())}
    assert set(rows) == set(models.split(","))
    for name, row in rows.items():
        assert REQUIRED <= set(row) and 0.5 < row["auc"] <= 1.0, (name, row["auc"])
    # EGES scores cold-start pairs from side information; the others must impute them.
    assert rows["eges"]["n_imputed_pairs"] < rows["skipgram"]["n_imputed_pairs"]
    assert rows["skipgram"]["n_imputed_pairs"] == rows["skipgram"]["n_unseen_pairs"]
    assert rows["skipgram"]["auc_unseen"] == 0.5 and rows["eges"]["auc_unseen"] != 0.5
    # The cold slice proper: only pairs whose unseen products all have metadata; EGES answers them all.
    cold = rows["eges"]["n_cold_pairs"]
    assert 0 < cold <= rows["eges"]["n_unseen_pairs"] and cold == rows["skipgram"]["n_cold_pairs"]
    if rows["eges"]["auc_cold"] is not None:
        assert rows["skipgram"]["auc_cold"] == 0.5 and rows["eges"]["auc_cold"] != 0.5
