"""User-item models end to end through the CLI, on a MovieLens 100K fixture in its exact format with planted
structure: two groups of users who each rate their own group's movies high and the other group's low.
`prepare ratings` (the ua.base/ua.test files) → `compare` → `recommend`, `train` / `evaluate`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from itemvec import registry
from itemvec.data.ratings import ML100K_GENRES

N_USERS, N_ITEMS = 60, 40  # users 1-30 and items 1-20 are group A; the rest group B


def write_planted_ml100k(folder: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    base, test = [], []
    for user in range(1, N_USERS + 1):
        group = user <= N_USERS // 2
        items = rng.choice(np.arange(1, N_ITEMS + 1), size=16, replace=False)
        times = 880_000_000 + np.sort(rng.choice(1_000_000, size=len(items), replace=False))
        rows = []
        for item, t in zip(items, times):
            same = (item <= N_ITEMS // 2) == group
            rating = int(rng.integers(4, 6)) if same else int(rng.integers(1, 3))
            rows.append(f"{user}\t{item}\t{rating}\t{t}\n")
        test += rows[-3:]
        base += rows[:-3]
    (folder / "ua.base").write_text("".join(base))
    (folder / "ua.test").write_text("".join(test))
    (folder / "u.data").write_text("".join(base + test))
    lines = []
    for item in range(1, N_ITEMS + 1):
        flags = ["0"] * len(ML100K_GENRES)
        flags[1 if item <= N_ITEMS // 2 else 8] = "1"  # Action for group A, Drama for group B
        lines.append(f"{item}|Movie {item} (19{60 + item})|01-Jan-19{60 + item}||http://us.imdb.com/{item}|"
                     + "|".join(flags))
    (folder / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    (folder / "u.user").write_text("".join(f"{u}|{20 + u % 40}|{'MF'[u % 2]}|student|{10000 + u}\n"
                                           for u in range(1, N_USERS + 1)))


def prepare_planted_ratings(root: Path) -> Path:
    """The planted fixture prepared through the library (its ua.base / ua.test split); returns the DATA_DIR."""
    from itemvec.data.ratings import prepare_ratings

    write_planted_ml100k(root / "ml")
    prepare_ratings(root / "ml", root / "data", fmt="movielens-100k", split_files="ua.base,ua.test",
                    progress=False, log=lambda line: None)
    return root / "data"


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "itemvec.cli", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("ratings")
    write_planted_ml100k(root / "ml-100k")
    data = root / "data"
    result = run_cli("prepare", "ratings", root / "ml-100k", "--format", "movielens-100k", "--split-files",
                     "ua.base,ua.test", "--validation-fraction", "0.1", "--out", data, "--no-progress")
    assert result.returncode == 0, result.stderr
    return root, data


FAST = ["epochs=30", "batch_size=64", "lstm.batch_size=8", "dim=16"]


def test_compare_every_user_item_model(prepared):
    root, data = prepared
    out = root / "report"
    models = registry.default_models("ratings")
    args = ["compare", "--data", data, "--out", out, "--no-progress"]
    for setting in FAST:
        args += ["--set", setting]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    rows = {row["model"]: row for row in json.loads((out / "metrics.json").read_text())}
    assert list(rows) == models
    ranking = ("auc_per_user", "precision_at_10", "recall_at_10", "map_at_10", "ndcg_at_10")
    for name, row in rows.items():
        for key in ("model", "rmse", "rmse_scaled", "mae", *ranking, "train_seconds", "peak_rss_mb"):
            assert key in row, (name, key)
        explicit = registry.get(name, "ratings").kind == "explicit"
        assert (row["rmse"] is not None) == explicit, name
        assert all(0.0 <= row[key] <= 1.0 for key in ranking), name
        assert row["peak_rss_mb"] > 0
    # Planted groups: every learned explicit model predicts far better than the global mean, and the implicit
    # models put the user's own group first (popularity cannot: both groups are equally popular).
    # (Biases alone cannot: the structure is all in the user-item interaction.)
    for name in ("mf-explicit", "mf-explicit-bias", "dense"):
        assert rows[name]["rmse"] < 0.8 * rows["global-mean"]["rmse"], name
    assert 0 < rows["lstm"]["rmse"] < 4  # its quality is tested in test_explicit_models.py
    assert abs(rows["global-mean"]["rmse_scaled"] * 4 - rows["global-mean"]["rmse"]) < 1e-9  # scale 1-5
    for name in ("bpr", "warp", "triplet", "deep-triplet", "fm", "mf-explicit-bias", "als", "itemknn", "rp3beta",
                 "ease"):
        assert rows[name]["auc_per_user"] > rows["popularity"]["auc_per_user"] + 0.1, name
    page = (out / "report.html").read_text()
    assert "RMSE [0,1]" in page and "AUC per user" in page and "Users: 60" in page
    assert "rmse" in result.stdout and f"report: {out / 'report.html'}" in result.stdout


def test_ease_over_its_limit_is_refused_when_named_and_left_out_of_the_defaults(prepared):
    root, data = prepared
    env = {**os.environ, "ITEMVEC_EASE_MAX_ITEMS": "10"}
    named = subprocess.run([sys.executable, "-m", "itemvec.cli", "compare", "--data", str(data), "--out",
                            str(root / "ease-named"), "--models", "popularity,ease", "--no-progress"],
                           capture_output=True, text=True, env=env)
    assert named.returncode == 2, named.stderr
    assert named.stderr.strip().splitlines()[-1].startswith("error: ease: ") and "over its limit of 10" in named.stderr
    assert not (root / "ease-named").exists()


def test_train_evaluate_recommend(prepared):
    root, data = prepared
    run = root / "run-bpr"
    result = run_cli("train", "bpr", "--data", data, "--out", run, "--set", "epochs=30", "--set", "batch_size=64",
                     "--no-progress")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["model"] == "bpr" and metrics["rmse"] is None and metrics["auc_per_user"] > 0.7
    assert (run / "history.jsonl").exists()
    again = run_cli("evaluate", str(run))
    assert again.returncode == 0, again.stderr
    assert json.loads((run / "metrics.json").read_text())["auc_per_user"] == metrics["auc_per_user"]

    result = run_cli("recommend", run, "--user", "1", "--user", "45", "-k", "5", "--json")
    assert result.returncode == 0, result.stderr
    by_user = {r["user"]: r for r in json.loads(result.stdout)}
    base = [line.split("\t") for line in (root / "ml-100k" / "ua.base").read_text().splitlines()]
    for user, own_group in (("1", range(1, 21)), ("45", range(21, 41))):
        recs = by_user[user]["recommendations"]
        assert len(recs) == 5 and all(r["title"].startswith("Movie ") for r in recs)
        rated = {i for u, i, _, _ in base if u == user}
        assert not rated & {r["item"] for r in recs}  # never an item rated in train
        assert sum(int(r["item"]) in own_group for r in recs) >= 4
        assert by_user[user]["popularity_ranking"] is False  # a user with train ratings: the model's own ranking
    text = run_cli("recommend", run, "--user", "1", "-k", "3")
    assert text.returncode == 0 and text.stdout.startswith("user 1") and text.stdout.count("Movie ") == 3

    unknown = run_cli("recommend", run, "--user", "nobody")
    assert unknown.returncode == 2 and "unknown user id(s): nobody" in unknown.stderr
    assert unknown.stderr.strip().count("\n") == 0
    wrong = run_cli("train", "mf", "--data", data, "--out", root / "x", "--no-progress")
    assert wrong.returncode == 2 and "unknown model 'mf' for ratings data" in wrong.stderr
