"""Fault injection: the user's files are never touched, tampered folders never reach a kernel, no silent wrong
result, signals and disk faults end in one line and the right exit status, every setting is checked.

Each case runs the real command line: in this process (``cli``, fast) where only the exit status, the message
and the files matter, in a subprocess where a signal or a second process is the point. The readers' own
record-level faults and fuzzing are in test_bad_records.py and test_fuzz_readers.py.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import typing
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from itemvec import registry
from itemvec.cli import main
from itemvec.config import Choices, Range, _specs, replace
from itemvec.data.prepare import prepare_amazon
from itemvec.data.synthetic import write_amazon_2014
from itemvec.outputs import LOCK, MARKER, OutputFolder, safe_name
from itemvec.runs import _reusable, resolve_config, train_run

sys.path.insert(0, str(Path(__file__).parent))
from test_ratings_cli import write_planted_ml100k  # noqa: E402

FAST = ["--set", "epochs=1", "--set", "dim=8", "--no-progress"]


@dataclasses.dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run ``itemvec ARGS`` in this process: (exit status, stdout, stderr)."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def run(*args) -> Result:
        monkeypatch.setattr(sys, "argv", ["itemvec", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def refused(result: Result, *fragments: str) -> None:
    """Exit 2 with exactly one line on stderr, starting "error:", containing every fragment."""
    assert result.code == 2, (result.code, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    for fragment in fragments:  # "a|b": either
        assert any(part in lines[0] for part in fragment.split("|")), (fragment, lines[0])


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes, but the lock file a job leaves in its own folder (its content is the last pid)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != LOCK}


def leftovers(folder: Path) -> list[str]:
    """Temporary names itemvec leaves nowhere: .NAME.tmp-* inside the folder or beside it."""
    found = [p.name for p in folder.rglob("*") if ".tmp-" in p.name] if folder.exists() else []
    return found + [p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.tmp-")]


def run_cli(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "itemvec.cli", *map(str, args)], capture_output=True, text=True,
                          **kwargs)


def start_cli(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "itemvec.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


# ---------------------------------------------------------------- fixtures: a catalogue, a DATA_DIR, runs


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    raw = root / "catalogue.json.gz"
    write_amazon_2014(raw, 600, seed=5, progress=False)
    prepare_amazon([raw], root / "data", seed=5, progress=False, log=lambda m: None)
    prepare_amazon([raw], root / "data-other-split", seed=6, progress=False, log=lambda m: None)
    train_run("mf", root / "data", root / "run-mf", sets={"epochs": "1", "dim": "8"}, progress=False,
              ranking_queries=50)
    write_planted_ml100k(root / "ml-100k")
    from itemvec.data.ratings import prepare_ratings

    prepare_ratings(root / "ml-100k", root / "ratings", fmt="movielens-100k", split_files="ua.base,ua.test",
                    validation_fraction=0.1, progress=False, log=lambda m: None)
    train_run("bpr", root / "ratings", root / "run-bpr", sets={"epochs": "1", "dim": "8"}, progress=False)
    return root


def copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


# ---------------------------------------------------------------- 1. never destroy the user's files


def user_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    (folder / "sub").mkdir()
    (folder / "sub" / "data.csv").write_text("1,2,3")
    return folder


def commands(world: Path, out: Path) -> dict[str, list]:
    return {
        "prepare amazon": ["prepare", "amazon", world / "catalogue.json.gz", "--out", out, "--no-progress"],
        "prepare edges": ["prepare", "edges", world / "edges.txt", "--out", out, "--no-progress"],
        "prepare ratings": ["prepare", "ratings", world / "ml-100k", "--format", "movielens-100k", "--out", out,
                            "--no-progress"],
        "train": ["train", "mf", "--data", world / "data", "--out", out, *FAST],
        "compare": ["compare", "--data", world / "data", "--out", out, "--models", "popularity", "--no-progress"],
    }


@pytest.fixture(scope="module")
def edges(world):
    (world / "edges.txt").write_text("".join(f"{i} {(i * 7 + 1) % 50}\n{i} {(i + 1) % 50}\n" for i in range(50)))
    return world / "edges.txt"


COMMANDS = ["prepare amazon", "prepare edges", "prepare ratings", "train", "compare"]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_folder_of_the_users_files_is_refused_and_untouched(world, edges, tmp_path, cli, command):
    folder = user_folder(tmp_path)
    before = snapshot(folder)
    refused(cli(*commands(world, folder)[command]), str(folder), "not written by itemvec")
    assert snapshot(folder) == before and sorted(os.listdir(folder)) == ["sub", "thesis.tex"]
    assert not leftovers(folder)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_regular_file_as_out_is_refused_and_untouched(world, edges, tmp_path, cli, command):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    refused(cli(*commands(world, target)[command]), str(target), "is a file")
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("command", COMMANDS)
def test_an_itemvec_folder_with_a_user_file_added_is_refused(world, edges, tmp_path, cli, command):
    kind = {"train": "run-mf", "compare": None}.get(command, "data")
    folder = copy(world / kind, tmp_path / "out") if kind else tmp_path / "out"
    if kind is None:
        assert cli(*commands(world, folder)[command]).code == 0
    (folder / "my-notes.md").write_text("mine")
    before = snapshot(folder)
    refused(cli(*commands(world, folder)[command]), "my-notes.md", "did not write")
    assert snapshot(folder) == before


def test_a_folder_of_another_kind_is_refused(world, tmp_path, cli):
    data = copy(world / "data", tmp_path / "data")
    before = snapshot(data)
    refused(cli("train", "mf", "--data", world / "data", "--out", data, *FAST), "data folder", "not a run folder")
    refused(cli("compare", "--data", world / "data", "--out", world / "run-mf", "--models", "popularity",
                "--no-progress"), "run folder", "not a report folder")
    assert snapshot(data) == before


def test_an_output_folder_holding_the_input_is_refused(world, tmp_path, cli):
    folder = tmp_path / "downloads"
    folder.mkdir()
    raw = shutil.copy(world / "catalogue.json.gz", folder / "x.json.gz")
    refused(cli("prepare", "amazon", raw, "--out", folder, "--no-progress"), "holds the input")
    refused(cli("prepare", "amazon", raw, "--out", raw, "--no-progress"), "is the input")
    assert sorted(os.listdir(folder)) == ["x.json.gz"]
    data = copy(world / "data", tmp_path / "data")
    refused(cli("train", "mf", "--data", data, "--out", data, *FAST), "is the input")
    refused(cli("compare", "--data", data / "split", "--out", data, "--models", "popularity", "--no-progress"))


def test_new_empty_and_own_folders_are_accepted(world, tmp_path, cli):
    raw = world / "catalogue.json.gz"
    empty = tmp_path / "empty"
    empty.mkdir()
    for out in (tmp_path / "new" / "deeper", empty, empty):  # the last: its own DATA_DIR, prepared again
        result = cli("prepare", "amazon", raw, "--out", out, "--seed", "5", "--no-progress")
        assert result.code == 0, result.err
        assert (out / "manifest.json").is_file() and (out / MARKER).is_file() and not leftovers(out)
    run = tmp_path / "run"
    for _ in range(2):
        assert cli("train", "mf", "--data", empty, "--out", run, *FAST).code == 0


def test_a_failed_first_run_leaves_no_folder(world, tmp_path, cli):
    out = tmp_path / "never"
    refused(cli("prepare", "amazon", world / "missing.json", "--out", out, "--no-progress"), "no such file")
    refused(cli("train", "mf", "--data", world / "data", "--out", out, "--set", "epochs=0"), "epochs")
    assert not out.exists() and not leftovers(out)


def test_symlinks_in_a_run_folder_are_replaced_not_followed(world, tmp_path, cli):
    run = copy(world / "run-mf", tmp_path / "run")
    victims = {}
    for name in ("config.toml", "model.json", "metrics.json", "history.jsonl", "train.json", "mf_roc.png"):
        victim = tmp_path / f"victim-{name}"
        victim.write_text(f"the user's {name}")
        (run / name).unlink()
        (run / name).symlink_to(victim)
        victims[name] = victim
    assert cli("train", "mf", "--data", world / "data", "--out", run, *FAST).code == 0
    for name, victim in victims.items():
        assert victim.read_text() == f"the user's {name}", name
        assert not (run / name).is_symlink() and (run / name).stat().st_size > 0


def test_out_that_is_a_symlink_is_refused(world, tmp_path, cli):
    real = copy(world / "run-mf", tmp_path / "real")
    link = tmp_path / "link"
    link.symlink_to(real)
    before = snapshot(real)
    refused(cli("train", "mf", "--data", world / "data", "--out", link, *FAST), "symbolic link")
    assert snapshot(real) == before


def test_a_lock_file_that_is_a_symlink_is_refused(world, tmp_path, cli):
    run = copy(world / "run-mf", tmp_path / "run")
    victim = tmp_path / "victim"
    victim.write_text("mine")
    (run / LOCK).unlink(missing_ok=True)
    (run / LOCK).symlink_to(victim)
    refused(cli("train", "mf", "--data", world / "data", "--out", run, *FAST), LOCK, "symbolic link")
    assert victim.read_text() == "mine"


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_outputs_follow_the_umask(world, tmp_path, mask):
    script = (f"import os, sys; os.umask({mask:#o}); from itemvec.cli import main; sys.argv = ['itemvec'] + "
              "sys.argv[1:]; main()")
    for args in (["prepare", "amazon", world / "catalogue.json.gz", "--out", tmp_path / "data", "--no-progress"],
                 ["train", "popularity", "--data", tmp_path / "data", "--out", tmp_path / "run", "--no-progress"]):
        result = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    for folder in (tmp_path / "data", tmp_path / "data" / "split", tmp_path / "run"):
        assert folder.stat().st_mode & 0o777 == 0o777 & ~mask, folder
    for path in (tmp_path / "data" / "manifest.json", tmp_path / "run" / "metrics.json",
                 tmp_path / "run" / "weights.npz"):
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask, path


def test_synth_never_overwrites_a_file_it_did_not_write(tmp_path, cli):
    mine = tmp_path / "catalogue.json.gz"
    mine.write_bytes(b"\x1f\x8b not a catalogue of itemvec's")
    refused(cli("synth", "amazon", "--products", "50", "--out", mine, "--no-progress"), "not written by itemvec")
    assert mine.read_bytes() == b"\x1f\x8b not a catalogue of itemvec's"
    ours = tmp_path / "ours.json.gz"
    for _ in range(2):  # its own file is replaced
        assert cli("synth", "amazon", "--products", "50", "--out", ours, "--no-progress").code == 0


# ---------------------------------------------------------------- 2. tampered folders never reach a kernel


def edit_manifest(data: Path, change) -> None:
    manifest = json.loads((data / "manifest.json").read_text())
    change(manifest)
    (data / "manifest.json").write_text(json.dumps(manifest))


def edit_table(path: Path, column: str, row: int, value) -> None:
    table = pq.read_table(path)
    values = table[column].to_numpy().copy()
    values[row] = value
    pq.write_table(table.set_column(table.column_names.index(column), column, pa.array(values, table[column].type)),
                   path)


@pytest.mark.parametrize("model", ["mf", "mf-bias", "skipgram", "mf-seq", "node2vec", "eges", "adamic-adar"])
@pytest.mark.parametrize("tamper", ["n_items lowered", "id out of range"])
def test_a_tampered_data_dir_is_refused_before_any_kernel(world, tmp_path, cli, model, tamper):
    data = copy(world / "data", tmp_path / "data")
    n = json.loads((data / "manifest.json").read_text())["n_items"]
    if tamper == "n_items lowered":
        edit_manifest(data, lambda m: m.update(n_items=n - 7))
        expected = "outside [0"
    else:
        edit_table(data / "split" / "train.parquet", "item_b", 3, n + 3)
        expected = f"{n + 3}"
    result = cli("train", model, "--data", data, "--out", tmp_path / "run",
                 *(FAST if model != "adamic-adar" else ["--no-progress"]))
    refused(result, expected, "the data folder was changed")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("tamper, message", [
    (lambda d: (d / "manifest.json").write_text("{not json"), "not valid JSON"),
    (lambda d: (d / "manifest.json").write_text("[1, 2]"), "expected a JSON object"),
    (lambda d: edit_manifest(d, lambda m: m.pop("n_items")), "'n_items'"),
    (lambda d: edit_manifest(d, lambda m: m.update(n_items="5000")), "'n_items'"),
    (lambda d: edit_manifest(d, lambda m: m.update(relation_bits=[1])), "relation_bits"),
    (lambda d: edit_manifest(d, lambda m: m.update(kind="ratings")), "ratings|'n_users'"),
    (lambda d: edit_manifest(d, lambda m: m.update(kind="weird")), "holds weird data, not pairs"),
    (lambda d: shutil.rmtree(d / "split"), "half-made"),
    (lambda d: (d / "split" / "test_negatives.parquet").unlink(), "test_negatives.parquet is missing"),
    (lambda d: (d / "split" / "train.parquet").write_bytes(b"PAR1 garbage"), "not a readable Parquet"),
    (lambda d: pq.write_table(pa.table({"x": [1]}), d / "split" / "validation.parquet"), "no column 'item_a'"),
    (lambda d: edit_table(d / "split" / "test.parquet", "weight", 0, np.inf), "finite positive"),
    (lambda d: edit_table(d / "split" / "test_negatives_degree.parquet", "item_a", 0, -4), "-4"),
    (lambda d: pq.write_table(pq.read_table(d / "id_map.parquet").slice(0, 10), d / "id_map.parquet"), "10 rows"),
    (lambda d: pq.write_table(pq.read_table(d / "products.parquet").slice(0, 10), d / "products.parquet"),
     "10 rows"),
])
def test_a_broken_data_dir_is_one_line(world, tmp_path, cli, tamper, message):
    data = copy(world / "data", tmp_path / "data")
    tamper(data)
    refused(cli("train", "mf", "--data", data, "--out", tmp_path / "run", *FAST), message)
    refused(cli("evaluate", world / "run-mf", "--data", data), message)
    refused(cli("compare", "--data", data, "--out", tmp_path / "report", "--models", "popularity",
                "--no-progress"), message)


def test_a_data_dir_that_is_not_one(tmp_path, cli):
    refused(cli("train", "mf", "--data", tmp_path / "nowhere", "--out", tmp_path / "run"), "no such data folder")
    (tmp_path / "plain").mkdir()
    refused(cli("train", "mf", "--data", tmp_path / "plain", "--out", tmp_path / "run"), "no manifest.json")


def edit_json(path: Path, change) -> None:
    value = json.loads(path.read_text())
    value = change(value)
    path.write_text(json.dumps(value))


def set_weights(run: Path, change) -> None:
    with np.load(run / "weights.npz") as npz:
        state = {k: npz[k] for k in npz.files}
    change(state)
    np.savez(run / "weights.npz", **state)


@pytest.mark.parametrize("tamper, message", [
    (lambda r: edit_json(r / "model.json", lambda m: {**m, "config": {**m["config"], "dimm": 8}}), "'dimm'"),
    (lambda r: edit_json(r / "model.json", lambda m: {**m, "config": {**m["config"], "dim": "eight"}}),
     "expected int"),
    (lambda r: edit_json(r / "model.json", lambda m: {**m, "config": {**m["config"], "dim": -3}}), "dim=-3"),
    (lambda r: edit_json(r / "model.json", lambda m: {**m, "config": list(m["config"])}), "table of settings"),
    (lambda r: edit_json(r / "model.json", lambda m: {k: v for k, v in m.items() if k != "model"}), '"model"'),
    (lambda r: edit_json(r / "model.json", lambda m: {**m, "model": "no-such-model"}), "unknown model"),
    (lambda r: (r / "model.json").write_text("]"), "not valid JSON"),
    (lambda r: (r / "model.json").unlink(), "no model.json"),
    (lambda r: set_weights(r, lambda s: s.pop("item_vectors_")), "no array 'item_vectors_'"),
    (lambda r: set_weights(r, lambda s: s.update(known_items_=s["known_items_"][:-5])), "known_items_"),
    (lambda r: (r / "weights.npz").write_bytes(b"PK\x03\x04 broken"), "not a readable weights file"),
    (lambda r: (r / "weights.npz").unlink(), "weights.npz: missing"),
    (lambda r: (r / "train.json").write_text("[]"), "expected a JSON object"),
    (lambda r: edit_json(r / "train.json", lambda t: {**t, "data_dir": 7}), "'data_dir'"),
    (lambda r: edit_json(r / "train.json", lambda t: {**t, "train_seconds": "fast"}), "'train_seconds'"),
])
def test_a_tampered_run_dir_is_one_line(world, tmp_path, cli, tamper, message):
    run = copy(world / "run-mf", tmp_path / "run")
    tamper(run)
    refused(cli("evaluate", run), message)
    refused(cli("similar", run, "x", "--data", world / "data"), message)


def test_a_legacy_model_json_without_schema_still_loads_and_a_mismatch_is_one_line(world, tmp_path, cli):
    run = copy(world / "run-mf", tmp_path / "run")
    edit_json(run / "model.json", lambda m: {k: v for k, v in m.items() if k != "arrays"})
    assert cli("evaluate", run).code == 0
    set_weights(run, lambda s: s.update(item_vectors_=s["item_vectors_"][:, :3]))  # not what dim=8 says
    result = cli("evaluate", run)
    assert result.code in (0, 2) and "Traceback" not in result.err


def test_a_run_of_the_other_kind(world, cli):
    refused(cli("similar", world / "run-bpr", "1"), "user-item model", "itemvec recommend")
    refused(cli("recommend", world / "run-mf", "--user", "1"), "item-item model", "itemvec similar")
    refused(cli("evaluate", world / "run-mf", "--data", world / "ratings"), "holds ratings")
    refused(cli("evaluate", world / "run-bpr", "--data", world / "data"), "holds product pairs")


def test_a_run_of_other_data_size_is_refused(world, edges, tmp_path, cli):
    assert cli("prepare", "edges", edges, "--out", tmp_path / "small", "--no-progress").code == 0
    refused(cli("evaluate", world / "run-mf", "--data", tmp_path / "small"), "was trained on 600 products")


# ---------------------------------------------------------------- 3. no silent wrong results


def test_a_killed_retraining_is_never_reused(world, tmp_path, cli):
    report = tmp_path / "report"
    assert cli("compare", "--data", world / "data", "--out", report, "--models", "mf", *FAST).code == 0
    # Retrain with other settings, killed hard (no cleanup at all) once its checkpoint exists.
    process = subprocess.Popen([sys.executable, "-m", "itemvec.cli", "compare", "--data", world / "data", "--out",
                                report, "--models", "mf", "--set", "epochs=400", "--set", "dim=8",
                                "--set", "batch_size=32", "--no-progress"], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (report / "runs" / "mf" / "checkpoint.npz").exists())
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    run = report / "runs" / "mf"
    data = registry_data(world / "data")
    for epochs in ("1", "400"):
        config = resolve_config("mf", None, {"epochs": epochs, "dim": "8",
                                             **({"batch_size": "32"} if epochs == "400" else {})})[1]
        assert not _reusable(run, "mf", config, data), epochs
    result = cli("compare", "--data", world / "data", "--out", report, "--models", "mf", "--set", "epochs=2",
                 "--set", "dim=8", "--no-progress")
    assert result.code == 0 and "[mf] training" in result.err and "reusing" not in result.err
    assert json.loads((report / "metrics.json").read_text())[0]["epochs"] == 2
    assert not [p for p in (report / "runs").iterdir() if ".tmp-" in p.name]


def registry_data(path: Path):
    from itemvec.runs import open_data

    return open_data(path)


def test_reuse_needs_the_same_data_and_settings(world, tmp_path, cli):
    report = tmp_path / "report"
    args = ["compare", "--models", "popularity,mf", "--out", report, *FAST]
    assert cli(*args, "--data", world / "data").code == 0
    again = cli(*args, "--data", world / "data")
    assert again.err.count("reusing") == 2
    other = cli(*args, "--data", world / "data-other-split")
    assert "reusing" not in other.err and other.err.count("training") == 2
    changed = cli("compare", "--models", "popularity,mf", "--out", report, "--set", "epochs=2", "--set", "dim=8",
                  "--no-progress", "--data", world / "data-other-split")
    assert "[popularity] reusing" in changed.err and "[mf] training" in changed.err


def test_a_checkpoint_of_other_data_is_refused(world, tmp_path, cli):
    run = tmp_path / "run"
    args = ["train", "mf", "--out", run, "--set", "epochs=3", "--set", "dim=8", "--no-progress"]
    from itemvec.models.base import TrainingData
    from itemvec.models.itemitem.mf import MF
    from itemvec.runs import open_data

    data = open_data(world / "data")
    model = MF(epochs=3, dim=8)
    model.data_fingerprint = data.fingerprint
    (run).mkdir()
    with pytest.raises(KeyboardInterrupt):  # an interrupted `train` on DATA_DIR A leaves its checkpoint
        model.fit(TrainingData.from_data_dir(data), progress=False, run_dir=run, stop_after_epochs=2)
    (run / MARKER).write_text('{"kind": "run"}')
    from itemvec.config import toml_text

    (run / "config.toml").write_text(toml_text("mf", model.config))
    other = cli(*args, "--data", world / "data-other-split")
    refused(other, "checkpoint.npz", "other data", "--no-resume")
    assert (run / "checkpoint.npz").exists()
    settings = cli("train", "mf", "--out", run, "--set", "epochs=4", "--set", "dim=8", "--no-progress",
                   "--data", world / "data")
    refused(settings, "other settings")
    resumed = cli(*args, "--data", world / "data")
    assert resumed.code == 0, resumed.err
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in history] == [1.0, 2.0, 3.0]  # two from the checkpoint, one resumed
    assert not (run / "checkpoint.npz").exists()
    fresh = cli(*args, "--data", world / "data-other-split", "--no-resume")
    assert fresh.code == 0, fresh.err


def test_a_second_writer_is_refused_while_the_first_runs(world, tmp_path, cli):
    report = tmp_path / "report"
    first = start_cli("compare", "--data", world / "data", "--out", report, "--models", "mf", "--set",
                      "epochs=400", "--set", "dim=8", "--set", "batch_size=32", "--no-progress")
    try:
        wait_for(lambda: (report / LOCK).exists() and (report / LOCK).read_text().strip() == str(first.pid))
        refused(cli("compare", "--data", world / "data", "--out", report, "--models", "mf", *FAST),
                f"in use by process {first.pid}")
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    with OutputFolder(tmp_path / "held", "run"):
        refused(cli("train", "popularity", "--data", world / "data", "--out", tmp_path / "held", "--no-progress"),
                f"in use by process {os.getpid()}")


# ---------------------------------------------------------------- 4. signals and faults


def children_of(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc/*/stat)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def handles_signals(pid: int) -> bool:
    """Whether the process has installed itemvec's SIGTERM handler (Python itself only catches SIGINT)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(caught & (1 << (signal.SIGTERM - 1)))


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_training_keeps_the_checkpoint_and_says_so(world, tmp_path, signum, code):
    run = tmp_path / "run"
    process = start_cli("train", "mf", "--data", world / "data", "--out", run, "--set", "epochs=400", "--set",
                        "dim=8", "--set", "batch_size=32", "--no-progress")
    wait_for(lambda: (run / "checkpoint.npz").exists())
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "checkpoint.npz after epoch" in lines[0] and "resume" in lines[0], err
    assert not leftovers(run) and not (run / "train.json").exists() and not (run / "metrics.json").exists()
    with np.load(run / "checkpoint.npz") as npz:  # whole and readable
        assert int(npz["_epoch"]) >= 0


WRITING = {"atomic_write", "save_npz", "build", "exchange", "_write_marker", "_remove_all", "_remove",
           "remove_temporaries", "write_text", "write_json"}


def _interrupt_at_line(n: int):
    """A tracer that raises Interrupted at the n-th line executed in outputs.py's writing functions or in
    contextlib.py, as a signal handler would raise it there. (Taking and releasing the folder's lock is left
    out: a lock left held inside this one test process would refuse the next round, where a real process
    exits and the lock goes with it.)"""
    from itemvec.errors import Interrupted

    count = 0

    def tracer(frame, event, arg):
        nonlocal count
        code = frame.f_code
        if code.co_filename.endswith("contextlib.py") or (
                code.co_filename.endswith("itemvec/outputs.py") and code.co_name in WRITING):
            if event == "line":
                count += 1
                if count == n:
                    raise Interrupted(signal.SIGINT)
            return tracer
        return None

    return tracer


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_signal_at_any_line_of_a_write_leaves_the_old_whole_and_no_temporary(tmp_path, what):
    """Every point a signal can land at inside atomic_write / OutputFolder.build (and contextlib around them):
    once the guard has cleaned up, the target is the old or the new version, whole, and no .tmp-* is left."""
    from itemvec.errors import Interrupted
    from itemvec.guard import run_guarded
    from itemvec.outputs import save_npz

    if what == "file":
        target = tmp_path / "checkpoint.npz"
        save_npz(target, {"a": np.zeros(3)})

        def job():
            save_npz(target, {"a": np.ones(3)})

        def version():
            with np.load(target) as npz:
                return float(npz["a"][0])
    else:
        target = tmp_path / "data"
        folder = OutputFolder(target, "data")
        with folder, folder.build() as tmp:
            (tmp / "manifest.json").write_text("0")

        def job():
            again = OutputFolder(target, "data")
            with again, again.build() as tmp:
                (tmp / "manifest.json").write_text("1")

        def version():
            return float((target / "manifest.json").read_text())

    interrupted_at = []
    for n in range(1, 400):
        sys.settrace(_interrupt_at_line(n))
        try:
            code = run_guarded(job, report_interrupt=False)
        except Interrupted:  # landed in the guard's own clean-up: the next job's guard cleans up
            code = 130
        finally:
            sys.settrace(None)
        from itemvec.outputs import remove_temporaries

        remove_temporaries()
        assert version() in (0.0, 1.0)
        assert not leftovers(target), (n, leftovers(target))
        if code == 0:
            break
        interrupted_at.append(n)
    assert code == 0 and len(interrupted_at) > 10  # every line was tried until the write got through
    assert version() == 1.0


def processes_naming(text: str) -> list[int]:
    """The pids of live processes whose command line holds ``text`` (a forked worker keeps its parent's)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:  # ended meanwhile
            pass
    return found


@pytest.mark.parametrize("whom", ["process", "group"])
def test_a_signal_during_prepare_leaves_nothing(world, tmp_path, whom):
    """Sent to the process (`kill -INT`) or to its whole process group (Ctrl-C in a terminal), which holds the
    read's worker processes too: the input (64 MB) is read by workers."""
    one = tmp_path / "one.json.gz"
    write_amazon_2014(one, 200_000, seed=1, progress=False)
    big = tmp_path / "big.json.gz"  # three gzip members of it: about 5 s to read (the repeats are duplicates)
    big.write_bytes(one.read_bytes() * 3)
    for out in (tmp_path / "new", copy(world / "data", tmp_path / "existing")):
        before = snapshot(out) if out.exists() else None
        process = subprocess.Popen([sys.executable, "-m", "itemvec.cli", "prepare", "amazon", str(big), "--out",
                                    str(out), "--no-progress", "--workers", "2"], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, start_new_session=whom == "group")
        wait_for(lambda pid=process.pid: handles_signals(pid))
        wait_for(lambda out=out: len(processes_naming(str(out))) == 3)  # itself and its two workers
        time.sleep(0.5)  # into the read (about 5 s)
        if whom == "group":
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 130, err
        assert len(err.strip().splitlines()) == 1 and "interrupted" in err
        assert (snapshot(out) if out.exists() else None) == before
        assert not leftovers(out)
        wait_for(lambda out=out: not processes_naming(str(out)), timeout=10)


def test_a_signal_to_compare_stops_its_child(world, tmp_path):
    report = tmp_path / "report"
    process = start_cli("compare", "--data", world / "data", "--out", report, "--models", "popularity,mf", "--set",
                        "epochs=400", "--set", "dim=8", "--set", "batch_size=32", "--no-progress")
    wait_for(lambda: (report / "runs" / "mf" / "checkpoint.npz").exists())
    workers = children_of(process.pid)
    assert workers  # the training runs in a worker process of compare's
    process.send_signal(signal.SIGINT)  # the parent only, as `kill -INT` does
    _, err = process.communicate(timeout=90)
    assert process.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted (SIGINT): kept 1 finished run(s)") and "checkpoint.npz after epoch" in last
    assert not any(line.startswith("interrupted") for line in err.strip().splitlines()[:-1])  # one line
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=5)  # gone with the parent, not training on
    size = (report / "runs" / "mf" / "checkpoint.npz").stat().st_mtime_ns
    time.sleep(0.5)
    assert (report / "runs" / "mf" / "checkpoint.npz").stat().st_mtime_ns == size  # nobody writes any more


@pytest.mark.parametrize("fault", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_disk_faults_are_one_line_and_outputs_stay_whole(world, tmp_path, cli, monkeypatch, fault):
    def failing(*args, **kwargs):
        raise OSError(fault, os.strerror(fault), str(args[1] if len(args) > 1 else "?"))

    out = tmp_path / "data"
    with monkeypatch.context() as patch:
        patch.setattr(pq, "write_table", failing)
        refused(cli("prepare", "amazon", world / "catalogue.json.gz", "--out", out, "--no-progress"),
                os.strerror(fault))
    assert not out.exists() and not leftovers(out)
    existing = copy(world / "data", tmp_path / "existing")
    before = snapshot(existing)
    with monkeypatch.context() as patch:
        patch.setattr(pq, "write_table", failing)
        refused(cli("prepare", "amazon", world / "catalogue.json.gz", "--out", existing, "--no-progress"),
                os.strerror(fault))
    assert snapshot(existing) == before and not leftovers(existing)
    run = copy(world / "run-mf", tmp_path / "run")
    with monkeypatch.context() as patch:
        patch.setattr(np, "savez", failing)
        refused(cli("train", "mf", "--data", world / "data", "--out", run, *FAST), os.strerror(fault))
    assert not (run / "train.json").exists() and not leftovers(run)  # not complete, so never reused


@pytest.fixture
def small_disk(tmp_path, request):
    """A real tmpfs of ``size`` (the test's parameter; 64k by default). Root only: skipped where mounting is
    not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    size = getattr(request, "param", "64k")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_is_one_line_and_leaves_nothing_half_written(world, small_disk, cli):
    result = cli("prepare", "amazon", world / "catalogue.json.gz", "--out", small_disk / "data", "--no-progress")
    refused(result, "No space left on device")
    assert os.listdir(small_disk) == []  # no DATA_DIR, no temporary folder
    run = small_disk / "run"
    refused(cli("train", "mf", "--data", world / "data", "--out", run, "--set", "epochs=1", "--set", "dim=512",
                "--no-progress"), "No space left on device")
    assert not (run / "train.json").exists() and not leftovers(run)


@pytest.mark.parametrize("small_disk", ["4m"], indirect=True)
def test_a_read_only_disk_is_one_line(world, small_disk, cli):
    run = copy(world / "run-mf", small_disk / "run")
    before = snapshot(run)
    assert subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True).returncode == 0
    refused(cli("train", "mf", "--data", world / "data", "--out", run, *FAST), "Read-only file system")
    refused(cli("prepare", "amazon", world / "catalogue.json.gz", "--out", small_disk / "data", "--no-progress"),
            "Read-only file system")
    refused(cli("evaluate", run), "Read-only file system")
    assert snapshot(run) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits")
def test_a_read_only_folder_is_one_line(world, tmp_path, cli):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        refused(cli("prepare", "amazon", world / "catalogue.json.gz", "--out", folder / "data", "--no-progress"),
                "Permission denied")
        refused(cli("evaluate", world / "run-mf", "--data", folder), "no manifest.json")
    finally:
        folder.chmod(0o755)


# ---------------------------------------------------------------- 6. settings and arguments


def outside(rule: Range | Choices, kind: type):
    """A value just outside a declared range, or not among the choices."""
    if isinstance(rule, Choices):
        return "not-a-choice"
    if rule.low is not None:
        return (rule.low if rule.low_open else rule.low - (1 if kind is int else 1e-6)) if kind is int else (
            rule.low if rule.low_open else rule.low - 1e-6)
    return rule.high if rule.high_open else rule.high + 1


def declared_settings():
    for kind in registry.KINDS:
        for name in registry.names(kind):
            config_class = registry.get(name, kind).Config
            for key, (kind_, rules) in _specs(config_class).items():
                yield kind, name, config_class, key, kind_, rules


def test_every_declared_setting_refuses_values_outside_its_range():
    cases = 0
    for _kind, name, config_class, key, kind_, rules in declared_settings():
        for rule in rules:
            value = outside(rule, kind_)
            with pytest.raises(Exception) as caught:
                replace(config_class(), {key: value}, source=f"settings for {name}")
            assert type(caught.value).__name__ == "ConfigError" and key in str(caught.value), (name, key)
            assert str(rule) in str(caught.value), (name, key, str(caught.value))
            cases += 1
        if kind_ is float:
            for text in ("nan", "inf", "-inf"):
                with pytest.raises(Exception, match="finite"):
                    replace(config_class(), {key: text})
                cases += 1
        if kind_ is int:
            with pytest.raises(Exception, match="expected int"):
                replace(config_class(), {key: "1.5"})
            cases += 1
    assert cases > 300  # every numeric and choice setting of every registered model


def test_every_setting_has_a_declared_range_or_is_a_flag_or_text():
    untyped = [(name, key) for _k, name, _c, key, kind_, rules in declared_settings()
               if not rules and kind_ in (int, float)]
    assert untyped == []
    assert all(typing.get_origin(kind_) is None for *_, kind_, _ in declared_settings())


@pytest.mark.parametrize("setting, message", [
    ("epochs=0", "epochs=0 is out of range; expected [1, 10000]"), ("lr=inf", "lr=inf is not a finite number"),
    ("l2=nan", "l2=nan"), ("alpha=nan", "alpha=nan"), ("threads=-5", "threads=-5 is out of range"),
    ("dim=1000000000", "dim=1000000000 is out of range; expected [1, 4096]"), ("schedule=fast", "schedule='fast'"),
    ("negatives=-1", "negatives=-1"), ("batch_size=0", "batch_size=0"), ("dim=8.5", "expected int"),
])
def test_train_settings_out_of_range(world, tmp_path, cli, setting, message):
    refused(cli("train", "mf", "--data", world / "data", "--out", tmp_path / "run", "--set", setting), message)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("setting, message", [("subsample=-1", "subsample=-1"),
                                              ("source=/../../../tmp/x", "is not one of 'walks', 'sessions'"),
                                              ("walk_length=1", "walk_length=1"), ("p=0", "p=0")])
def test_sequence_settings_out_of_range(world, tmp_path, cli, setting, message):
    refused(cli("train", "skipgram", "--data", world / "data", "--out", tmp_path / "run", "--set", setting), message)


@pytest.mark.parametrize("args, message", [
    (["--max-bad-fraction", "nan"], "--max-bad-fraction"), (["--max-bad-fraction", "-1"], "--max-bad-fraction"),
    (["--max-bad-fraction", "1.5"], "[0, 1]"), (["--split", "1,0,0"], "--split"), (["--split", "0.5,0.5"], "--split"),
    (["--split", "a,b,c"], "--split"), (["--split", "0.5,nan,0.5"], "--split"), (["--seed", "-1"], "--seed"),
    (["--weights", "also_bought=nan"], "--weights"), (["--weights", "also_bought=inf"], "--weights"),
])
def test_prepare_arguments_are_checked_before_reading(world, tmp_path, cli, args, message):
    refused(cli("prepare", "amazon", world / "catalogue.json.gz", "--out", tmp_path / "data", "--no-progress", *args),
            message)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("args, message", [
    (["--threshold", "nan"], "--threshold"), (["--test-fraction", "nan"], "--test-fraction"),
    (["--validation-fraction", "1"], "--validation-fraction"), (["--max-bad-fraction", "-0.1"], "--max-bad"),
])
def test_prepare_ratings_arguments_are_checked(world, tmp_path, cli, args, message):
    refused(cli("prepare", "ratings", world / "ml-100k", "--format", "movielens-100k", "--out", tmp_path / "r",
                "--no-progress", *args), message)


@pytest.mark.parametrize("k", ["-5", "0", "1000000000"])
def test_k_is_bounded(world, cli, k):
    asin = pq.read_table(world / "data" / "id_map.parquet")["asin"][0].as_py()
    refused(cli("similar", world / "run-mf", asin, "-k", k), "-k", "[1, 10000]")
    refused(cli("recommend", world / "run-bpr", "--user", "1", "-k", k), "-k", "[1, 10000]")


def test_k_larger_than_the_catalogue_lists_what_exists(world, cli):
    asin = pq.read_table(world / "data" / "id_map.parquet")["asin"][0].as_py()
    result = cli("similar", world / "run-mf", asin, "-k", "10000", "--json")
    assert result.code == 0
    assert len(json.loads(result.out)[0]["similar"]) < 600


@pytest.mark.parametrize("models, message", [(",", "no model names"), ("mf,mf", "more than once"),
                                             ("mf-seq@source=/../../../tmp/x", "source"),
                                             ("mf@dim=0", "dim=0"), ("nosuch", "unknown model")])
def test_compare_models_are_checked_before_training(world, tmp_path, cli, models, message):
    refused(cli("compare", "--data", world / "data", "--out", tmp_path / "report", "--models", models,
                "--no-progress"), message)
    assert not (tmp_path / "report").exists()


def test_run_folder_names_cannot_leave_the_report(tmp_path):
    specs = ["mf", "mf@labels=continuous", "mf-seq@source=/../../../tmp/x", "../../x", ".hidden", "a/b", "a\\b",
             "é@x=ü", "x" * 300, "mf@p=1/2", "mf@p=1_2"]
    names = [safe_name(spec) for spec in specs]
    assert names[:2] == ["mf", "mf_labels=continuous"]
    assert len(set(names)) == len(names)
    for name in names:
        assert "/" not in name and "\\" not in name and not name.startswith(".") and 0 < len(name) <= 120
        assert (tmp_path / name).resolve().parent == tmp_path.resolve()


def test_usage_errors_are_one_line(world, cli):
    refused(cli("train", "mf"), "Missing option")
    refused(cli("train", "mf", "--data", world / "data", "--out", "x", "--epochs", "3"), "No such option")


SWALLOWED = """
import ctypes, os, signal, sys, time
from itemvec.guard import run_guarded

def inside_a_callback():  # called from C: an exception raised here is printed and dropped by ctypes
    os.kill(os.getpid(), signal.SIGINT)

callback = ctypes.CFUNCTYPE(None)(inside_a_callback)

def job():
    callback()
    start = time.time()
    while time.time() - start < 20:
        pass
    print("finished", flush=True)
    return 0

sys.exit(run_guarded(job))
"""


def test_a_signal_that_lands_in_a_callback_from_c_still_interrupts():
    """The handler runs at the next bytecode, which may be inside a callback from C (numba compiling a kernel on
    a fresh install calls back into llvmlite): ctypes drops the exception raised there. The guard delivers it
    again, so the job still ends with 130 and one line, instead of running on to exit 0."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", SWALLOWED], capture_output=True, text=True, timeout=60)
    assert result.returncode == 130, result.stderr
    assert "finished" not in result.stdout and time.perf_counter() - started < 15
    assert result.stderr.strip().splitlines() == ["interrupted (SIGINT): no partial outputs were left"]


def test_a_selected_column_the_file_lacks_is_named(tmp_path):
    """read_table(select=...) names a column the file lacks (ParquetFile.read alone would drop it silently)."""
    from itemvec.data.store import read_table
    from itemvec.errors import InputError

    path = tmp_path / "products.parquet"
    pq.write_table(pa.table({"asin": ["a", "b"]}), path)
    with pytest.raises(InputError, match="no column 'title'"):
        read_table(path, {}, select=["asin", "title"])
    assert read_table(path, {}, select=["asin"]).num_rows == 2
