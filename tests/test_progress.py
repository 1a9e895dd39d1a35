"""Progress in a log (stderr not a terminal): one line per stage and per epoch, never carriage-return frames."""

from __future__ import annotations

import subprocess
import sys

from itemvec.data.synthetic import write_amazon_2014


def run(*args):
    return subprocess.run([sys.executable, "-m", "itemvec.cli", *map(str, args)], capture_output=True, text=True)


def test_a_log_gets_one_line_per_stage_and_epoch(tmp_path):
    raw = tmp_path / "c.json.gz"
    write_amazon_2014(raw, 300, seed=1, progress=False)
    prepared = run("prepare", "amazon", raw, "--out", tmp_path / "data")
    assert prepared.returncode == 0, prepared.stderr
    assert "\r" not in prepared.stderr and prepared.stderr.splitlines()[0].startswith("reading: ")
    trained = run("train", "mf", "--data", tmp_path / "data", "--out", tmp_path / "run", "--set", "epochs=3",
                  "--set", "dim=8")
    assert trained.returncode == 0, trained.stderr
    lines = trained.stderr.splitlines()
    assert "\r" not in trained.stderr
    assert [line.split(",")[0] for line in lines[:3]] == ["training: epoch 1/3", "training: epoch 2/3",
                                                           "training: epoch 3/3"]
    assert len(lines) == 4 and lines[3].startswith("training: 3 steps in ")
    assert "validation AUC" in lines[0]
