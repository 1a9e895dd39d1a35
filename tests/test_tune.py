"""Settings chosen on validation: the search spaces every model declares, the seeded random search, and
`compare --tune` end to end (trials on validation, the best trained as the run, trials reused on a rerun)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from itemvec import registry, tune
from itemvec.config import replace


@pytest.mark.parametrize(("kind", "name"), [(k, n) for k in registry.KINDS for n in registry.names(k)])
def test_every_search_space_draws_valid_settings(kind, name):
    """A space's keys are the model's settings and every draw passes the settings' own checks (a typo in a space
    would otherwise surface only at tuning time). Models without a space are the ones without settings to tune."""
    cls = registry.get(name, kind)
    space = getattr(cls, "search_space", {})
    if not space:
        assert name in {"popularity", "adamic-adar", "global-mean"}, name
        return
    draws = tune.trials(space, 6, tune.model_seed(name))
    assert draws[0] == {} and len(draws) == 6 and len({json.dumps(d, sort_keys=True) for d in draws}) == 6
    for draw in draws[1:]:
        replace(cls.Config(), draw, source=name)  # raises on an unknown key or a value out of range
    assert draws == tune.trials(space, 6, tune.model_seed(name))  # seeded: the same trials on every run


def test_dimensions_stay_in_their_bounds():
    rng = np.random.default_rng(0)
    for dimension in (tune.Uniform(0.5, 2.0), tune.LogUniform(1e-4, 1e-1), tune.IntRange(3, 9),
                      tune.IntRange(10, 1000, log=True)):
        values = [dimension.draw(rng) for _ in range(500)]
        assert min(values) >= dimension.low and max(values) <= dimension.high, dimension
    assert {tune.OneOf((1, 2, 3)).draw(rng) for _ in range(100)} == {1, 2, 3}
    assert tune.better("rmse", 0.9, 1.0) and not tune.better("ndcg_at_10", 0.1, 0.2)
    assert tune.better("auc", 0.6, None) and not tune.better("auc", None, 0.5)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "itemvec.cli", *map(str, args)], capture_output=True, text=True)


def test_compare_tune_chooses_on_validation_and_trains_the_best(tmp_path):
    raw = tmp_path / "cat.json.gz"
    assert cli("synth", "amazon", "--products", 3000, "--seed", 4, "--out", raw, "--no-progress").returncode == 0
    data = tmp_path / "data"
    assert cli("prepare", "amazon", raw, "--out", data, "--seed", 4, "--no-progress").returncode == 0
    out = tmp_path / "report"
    result = cli("compare", "--data", data, "--out", out, "--models", "popularity,itemknn", "--tune", 3,
                 "--tune-on", "auc", "--no-progress")
    assert result.returncode == 0, result.stderr
    rows = {row["model"]: row for row in json.loads((out / "metrics.json").read_text())}
    tuning = rows["itemknn"]["tuning"]
    assert tuning["on"] == "auc" and len(tuning["trials"]) == 3 and tuning["trials"][0]["settings"] == {}
    best = max(tuning["trials"], key=lambda t: t["validation"])
    assert tuning["chosen"] == best["settings"] and tuning["validation"] == best["validation"]
    for key, value in tuning["chosen"].items():  # the run was trained with the chosen settings
        assert rows["itemknn"]["config"][key] == value
    assert rows["popularity"]["tuning"]["note"] == "no search space"
    # The trial's validation figure is the model's AUC on the validation part (not the test part's).
    from itemvec.data.store import DataDir
    from itemvec.evaluate.protocols import evaluate_item_model

    model = registry.get("itemknn")(**tuning["chosen"]).fit(DataDir(data), progress=False)
    assert evaluate_item_model(model, DataDir(data), part="validation")[0]["auc"] == pytest.approx(best["validation"])
    assert "settings chosen on validation auc over 3 trials" in (out / "report.md").read_text()
    assert "[itemknn] trial 3/3" in result.stderr and "[itemknn] chosen on validation" in result.stderr
    # A rerun reuses the finished trials (and the finished run).
    again = cli("compare", "--data", data, "--out", out, "--models", "popularity,itemknn", "--tune", 3,
                "--tune-on", "auc", "--no-progress")
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("(kept from an earlier run)") == 3 and "[itemknn] reusing" in again.stderr
    rerun = {row["model"]: row for row in json.loads((out / "metrics.json").read_text())}
    assert rerun["itemknn"]["tuning"] == tuning
    bad = cli("compare", "--data", data, "--out", tmp_path / "bad", "--models", "itemknn", "--tune", 2,
              "--tune-on", "nope", "--no-progress")
    assert bad.returncode == 2 and "--tune-on: 'nope' is not a validation figure" in bad.stderr
    assert "known: ap, auc, auc_cold, auc_degree," in bad.stderr
    assert not (tmp_path / "bad").exists() and "trial" not in bad.stderr  # refused before any trial


def test_an_interrupted_search_says_which_trials_it_kept(tmp_path):
    from itemvec.runs import _kept_note

    trials = tmp_path / "tuning" / "mf" / "trials.json"
    trials.parent.mkdir(parents=True)
    trials.write_text(json.dumps({"trials": [{"settings": {}}, {"settings": {"lr": 0.1}}]}))
    note = _kept_note(tmp_path / "runs", 0, "mf", tmp_path / "runs" / "mf", 5, trials)
    assert note == f"kept 2 tuning trial(s) of mf in {trials}; rerun the same command to reuse them and resume"
    assert _kept_note(tmp_path / "runs", 0, "mf", tmp_path / "runs" / "mf", 5, tmp_path / "none.json").startswith(
        "no model had finished")
