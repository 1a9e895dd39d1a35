"""Data-parallel training on torch.distributed (itemvec.distributed): two real processes on loopback, launched
by torchrun (or by hand, as two machines would be), against the single process on a planted catalogue; the
sync's arithmetic against an oracle; the refusals.

Each torchrun case runs in a subprocess with a timeout, one thread per rank."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import itemvec
from itemvec import distributed, sync_kernels
from itemvec.errors import InputError
from itemvec.train import TrainSettings, refuse_foreign_checkpoint, run_identity

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
# skip-gram (SGD): 3 epochs so that a run has checkpoints to resume from; batches small enough for many syncs
SKIPGRAM = ["--set", "threads=1", "--set", "dim=32", "--set", "batch_size=500", "--set", "epochs=3",
            "--set", "walks_per_node=3", "--no-progress"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def small_row_groups(path: Path, groups: int) -> int:
    """Rewrite the Parquet file ``path`` with the same rows in ``groups`` row groups (prepare writes one per
    million rows, so a small catalogue has one); returns its rows."""
    table = pq.read_table(path)
    pq.write_table(table, path, row_group_size=-(-table.num_rows // groups))
    assert pq.ParquetFile(path).metadata.num_row_groups == groups
    return table.num_rows


def read_lines(stderr: str, path: str) -> dict[int, tuple[int, int, int, int, int, int]]:
    """rank → (lo, hi, total, first group, last group, groups) from each rank's line about what it read."""
    found = {}
    for match in re.finditer(rf"rank (\d) of 2: reads rows (\d+)-(\d+) of (\d+) of {re.escape(path)} "
                             r"\(row groups (\d+)(?:-(\d+))? of (\d+)\)", stderr):
        rank, lo, hi, total, first, last, groups = match.groups()
        found[int(rank)] = (int(lo), int(hi), int(total), int(first), int(last or first), int(groups))
    return found


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dist")
    itemvec.synth_amazon(root / "cat.json.gz", products=3000, seed=4, progress=False)
    itemvec.prepare_amazon([root / "cat.json.gz"], root / "data", seed=4, progress=False, log=lambda line: None)
    small_row_groups(root / "data" / "split" / "train.parquet", 7)  # the walk models read every group
    return root / "data"


def itemvec_cli(*args: object, launcher: list[str] | None = None, timeout: float = 240,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    command = [*(launcher or [sys.executable]), "-m", "itemvec", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env or ENV)


def weights(run: Path) -> dict[str, np.ndarray]:
    with np.load(run / "weights.npz") as npz:
        return {k: npz[k] for k in npz.files}


def one_and_two(model: str, root: Path, *settings: object) -> tuple[list[dict], str]:
    """``train MODEL`` into root/single (one process) and root/two (two ranks under torchrun), one thread
    each: both runs' metrics.json, and the two ranks' stderr."""
    common = [*settings, "--set", "threads=1", "--no-progress"]
    single = itemvec_cli("train", model, "--out", root / "single", *common)
    assert single.returncode == 0, single.stderr
    two = itemvec_cli("train", model, "--out", root / "two", *common, "--set", "distributed=true", launcher=TORCHRUN)
    assert two.returncode == 0, two.stderr
    return [json.loads((root / run / "metrics.json").read_text()) for run in ("single", "two")], two.stderr


@pytest.fixture(scope="module")
def runs(catalogue, tmp_path_factory) -> dict[str, Path]:
    """The single-process run and the uninterrupted two-process run of the same settings."""
    root = tmp_path_factory.mktemp("runs")
    single = itemvec_cli("train", "skipgram", "--data", catalogue, "--out", root / "single", *SKIPGRAM)
    assert single.returncode == 0, single.stderr
    two = itemvec_cli("train", "skipgram", "--data", catalogue, "--out", root / "two", *SKIPGRAM,
                      "--set", "distributed=true", launcher=TORCHRUN)
    assert two.returncode == 0, two.stderr
    (root / "two.stderr").write_text(two.stderr)
    return {"single": root / "single", "two": root / "two", "root": root}


def test_two_processes_match_the_single_process_and_each_other(runs):
    single = json.loads((runs["single"] / "metrics.json").read_text())
    two = json.loads((runs["two"] / "metrics.json").read_text())
    assert abs(two["auc"] - single["auc"]) < 0.01, (two["auc"], single["auc"])
    assert two["auc"] > 0.75  # the planted structure is learned, not just matched
    info = json.loads((runs["two"] / "train.json").read_text())["distributed"]
    assert info["world_size"] == 2 and info["syncs"] >= 3 * 5  # every step of three epochs
    assert info["payload_bytes_per_sync"] > 0 and info["collective_seconds"] >= 0
    # rank 1 wrote nothing and said which tables it ended with: rank 0's, bit for bit
    stderr = (runs["root"] / "two.stderr").read_text()
    assert f"rank 1 of 2: trained its share of every step; tables sha256 {info['tables_sha256']}; peak RSS " in stderr
    assert sorted(p.name for p in runs["root"].iterdir()) == ["single", "two", "two.stderr"]


def test_adagrad_models_match_the_single_process_from_their_own_rows(tmp_path):
    """mf-bias (row-wise Adagrad): each rank's accumulators grow by the world size × its own squared
    gradients between syncs and are averaged at a sync (``Shard.accumulate``); summed plainly, a rank's steps
    were the larger ones of one that sees only its share (AUC 0.905 against 0.918 on a 30,000-product
    catalogue, BENCHMARKS.md). Each rank reads only its own rows of the train pairs, from the row groups
    that hold them, and takes the degrees over every rank's."""
    itemvec.synth_amazon(tmp_path / "cat.json.gz", products=20000, seed=5, progress=False)
    itemvec.prepare_amazon([tmp_path / "cat.json.gz"], tmp_path / "data", seed=5, progress=False,
                           log=lambda line: None)
    rows = small_row_groups(tmp_path / "data" / "split" / "train.parquet", 10)
    figures, stderr = one_and_two("mf-bias", tmp_path, "--data", tmp_path / "data", "--set", "batch_size=8192")
    assert figures[0]["auc"] > 0.88
    for key in ("auc", "auc_degree"):
        assert abs(figures[1][key] - figures[0][key]) < 0.01, (key, figures)
    read = read_lines(stderr, "split/train.parquet")
    assert read[0][:3] == (0, rows // 2, rows) and read[1][:3] == (rows // 2, rows, rows)  # every row once
    # each rank read the row groups of its own rows: 5 or 6 of the 10, the one its half starts or ends in
    assert read[0][3:] in ((0, 4, 10), (0, 5, 10)) and read[1][3:] in ((4, 9, 10), (5, 9, 10))
    info = json.loads((tmp_path / "two" / "train.json").read_text())
    assert info["train_pairs"] == rows  # every rank's rows, not rank 0's


def test_resume_after_an_interruption_gives_the_uninterrupted_result(catalogue, runs, tmp_path):
    out = tmp_path / "resumed"
    command = [*TORCHRUN, "-m", "itemvec", "train", "skipgram", "--data", str(catalogue), "--out", str(out),
               *SKIPGRAM, "--set", "distributed=true"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 200
    while not (out / "checkpoint.npz").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before its first checkpoint"
    process.send_signal(signal.SIGTERM)  # torchrun passes it on to both ranks
    _, err = process.communicate(timeout=60)
    assert process.returncode != 0
    assert not (out / "weights.npz").exists() and (out / "checkpoint.npz").exists()
    again = itemvec_cli("train", "skipgram", "--data", catalogue, "--out", out, *SKIPGRAM,
                        "--set", "distributed=true", launcher=TORCHRUN)
    assert again.returncode == 0, again.stderr
    resumed, whole = weights(out), weights(runs["two"])
    assert resumed.keys() == whole.keys()
    for key in whole:
        np.testing.assert_array_equal(resumed[key], whole[key], err_msg=key)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _by_hand(rank: int, port: int, *args: object) -> subprocess.Popen:
    """One rank started without torchrun, as on a machine of its own."""
    env = {**ENV, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    return subprocess.Popen([sys.executable, "-m", "itemvec", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)


def test_ranks_started_with_other_settings_refuse_together(catalogue, tmp_path):
    for _ in range(3):  # a port taken between _free_port and the rendezvous: start again on another
        port = _free_port()
        processes = [_by_hand(rank, port, "train", "skipgram", "--data", catalogue, "--out", tmp_path / "run",
                              *SKIPGRAM, "--set", "distributed=true", "--set", f"seed={rank}") for rank in (0, 1)]
        errors = [process.communicate(timeout=120)[1] for process in processes]
        if not any("could not join the other ranks" in err for err in errors):
            break
    for rank, (process, err) in enumerate(zip(processes, errors)):
        assert process.returncode == 2, err
        assert f"rank {rank} of 2: the ranks were started with different models, settings or data" in err
    assert not (tmp_path / "run" / "weights.npz").exists()


LEAVE = """
import atexit, os, sys
import torch.distributed as dist
dist.init_process_group("gloo", init_method="tcp://127.0.0.1:" + sys.argv[1], rank=0, world_size=1)
atexit.register(lambda: print("interpreter teardown", file=sys.stderr, flush=True))
sys.argv = ["itemvec", *sys.argv[2:]]
from itemvec.cli import main
main()
"""


@pytest.mark.parametrize("args, code", [(["train", "mf", "--data", "no-such-dir", "--out", "run"], 2),
                                        (["models"], 0)])
def test_a_rank_leaves_without_the_interpreters_teardown(args, code, tmp_path):
    """A process that joined a process group ends with os._exit after its last line (flushed), so that no
    interpreter teardown destroys the gloo group under its threads (which aborted a refusing rank with -6)."""
    done = subprocess.run([sys.executable, "-c", LEAVE, str(_free_port()), *args], capture_output=True,
                          text=True, env=ENV, cwd=tmp_path, timeout=120)
    assert done.returncode == code, done.stderr
    assert "interpreter teardown" not in done.stderr
    if code:
        assert done.stderr.strip().splitlines()[-1].startswith("error: "), done.stderr
    else:
        assert "mf-bias" in done.stdout.split()  # the whole listing, flushed before the exit


def test_a_rank_that_refuses_the_data_ends_every_rank_at_once(catalogue, tmp_path):
    """Rank 0 checks every table, the other ranks the rows they read: a tampered validation file is refused
    by rank 0 with its own line, and rank 1 refuses at once, naming rank 0, instead of waiting out the
    timeout in the next collective."""
    data = tmp_path / "data"
    shutil.copytree(catalogue, data)
    path = data / "split" / "validation_negatives.parquet"
    table = pq.read_table(path)
    item_a = table["item_a"].to_numpy().copy()
    item_a[3] = 10**6
    pq.write_table(table.set_column(0, "item_a", pa.array(item_a, pa.int32())), path)
    started = time.monotonic()
    for _ in range(3):  # a port taken between _free_port and the rendezvous: start again on another
        port = _free_port()
        processes = [_by_hand(rank, port, "train", "mf", "--data", data, "--out", tmp_path / "run", "--no-progress",
                              "--set", "threads=1", "--set", "distributed=true", "--set", "sync_timeout=120")
                     for rank in (0, 1)]
        errors = [process.communicate(timeout=120)[1] for process in processes]
        if not any("could not join the other ranks" in err for err in errors):
            break
    assert time.monotonic() - started < 60  # not the 120 s of the timeout
    assert [process.returncode for process in processes] == [2, 2], errors
    assert "validation_negatives.parquet: item_a 1000000 at row 3 is outside" in errors[0]
    assert "error: rank 1 of 2: rank 0 refused the data (see its own message)" in errors[1]
    assert not (tmp_path / "run" / "weights.npz").exists() and not (tmp_path / "run" / "train.json").exists()


def test_ratings_models_read_their_own_rows(tmp_path):
    """The user-item bpr on two ranks, each from its own rows of the train ratings: per-user AUC as the
    single process's, both ranks' tables the same."""
    from test_ratings_cli import prepare_planted_ratings

    data = prepare_planted_ratings(tmp_path)
    rows = small_row_groups(data / "ratings" / "train.parquet", 5)
    figures, stderr = one_and_two("bpr", tmp_path, "--data", data)
    assert figures[0]["auc_per_user"] > 0.7
    assert abs(figures[1]["auc_per_user"] - figures[0]["auc_per_user"]) < 0.02, figures
    read = read_lines(stderr, "ratings/train.parquet")
    assert read[0][:3] == (0, rows // 2, rows) and read[1][:3] == (rows // 2, rows, rows)
    info = json.loads((tmp_path / "two" / "train.json").read_text())
    assert info["train_ratings"] == rows
    assert f"tables sha256 {info['distributed']['tables_sha256']}" in stderr


def test_a_killed_rank_ends_the_other_with_one_line(catalogue, tmp_path):
    """Two ranks started by hand (as on two machines, without torchrun's agent to clean up): SIGKILL rank 1
    mid-run, and rank 0 must end on its own, with one line naming itself, within the sync timeout."""
    port = _free_port()
    out = tmp_path / "run"
    processes = [_by_hand(rank, port, "train", "skipgram", "--data", catalogue, "--out", out, *SKIPGRAM,
                          "--set", "epochs=50", "--set", "distributed=true", "--set", "sync_timeout=20")
                 for rank in (0, 1)]
    deadline = time.monotonic() + 200
    while not (out / "checkpoint.npz").exists() and time.monotonic() < deadline:
        assert processes[0].poll() is None, processes[0].communicate()[1]
        time.sleep(0.05)
    processes[1].kill()
    killed_at = time.monotonic()
    _, err = processes[0].communicate(timeout=60)
    processes[1].communicate()
    assert time.monotonic() - killed_at < 20 + 15
    assert processes[0].returncode == 1, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "rank 0 of 2: the other ranks stopped answering" in lines[0], err
    assert "Traceback" not in err
    assert (out / "checkpoint.npz").exists() and not (out / "weights.npz").exists()


def test_refusals(catalogue, tmp_path):
    alone = itemvec_cli("train", "skipgram", "--data", catalogue, "--out", tmp_path / "a", *SKIPGRAM,
                        "--set", "distributed=true")
    assert alone.returncode == 2 and "needs the processes torchrun starts" in alone.stderr
    assert not (tmp_path / "a").exists()
    env = {**ENV, "RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(_free_port())}
    als = itemvec_cli("train", "als", "--data", catalogue, "--out", tmp_path / "b", "--set", "distributed=true",
                      "--no-progress", env=env)
    assert als.returncode == 2, als.stderr
    assert "als does not train distributed; the models that do: mf, mf-bias" in als.stderr
    assert "bpr (ratings), warp (ratings)" in als.stderr


def test_compare_refuses_distributed(catalogue, tmp_path):
    result = itemvec_cli("compare", "--data", catalogue, "--out", tmp_path / "report", "--models", "mf",
                         "--set", "distributed=true", "--no-progress")
    assert result.returncode == 2 and "compare trains on one machine" in result.stderr
    assert not (tmp_path / "report").exists()


def test_a_checkpoint_of_another_world_size_is_refused(monkeypatch, tmp_path):
    config = itemvec.SkipGram.Config(train=TrainSettings(distributed=True))
    monkeypatch.setenv("WORLD_SIZE", "2")
    two = run_identity("skipgram", config, "abc")
    monkeypatch.setenv("WORLD_SIZE", "3")
    three = run_identity("skipgram", config, "abc")
    assert two["world_size"] == 2 and three["world_size"] == 3
    assert "world_size" not in run_identity("skipgram", itemvec.SkipGram.Config(), "abc")
    with pytest.raises(InputError, match="another number of processes"):
        refuse_foreign_checkpoint(tmp_path / "checkpoint.npz", two, three)


class _Loopback:
    """Two in-process 'ranks' (threads) whose all-reduce meets at a barrier: the collective's oracle."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2)
        self.slots: list[np.ndarray | None] = [None, None]

    def group(self, rank: int, mode: str, reduce: str) -> distributed.Group:
        group = distributed.Group.__new__(distributed.Group)
        group.rank, group.world, group.mode, group.reduce, group.timeout = rank, 2, mode, reduce, 5
        group.snapshot = {}
        group.stats = {"syncs": 0, "dense": 0, "rows": 0, "payload_bytes": 0, "collective_seconds": 0.0,
                       "touched_fraction_sum": 0.0, "touched_tables": 0}

        def all_reduce(array, op="sum", what=""):
            self.slots[rank] = array.copy()
            self.barrier.wait()
            other = self.slots[1 - rank]
            assert other is not None and other.shape == array.shape
            array[...] = np.maximum(array, other) if op == "max" else self.slots[0] + self.slots[1]
            self.barrier.wait()
            group.stats["payload_bytes"] += array.nbytes

        group.all_reduce = all_reduce  # type: ignore[method-assign]
        return group


@pytest.mark.parametrize("mode", ["dense", "rows", "auto"])
@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_sync_adds_every_ranks_update_once(mode, reduce, monkeypatch):
    # Two threads call the sync at once: its kernels run as plain Python here (numba's default threading
    # layer is not safe for parallel kernels launched from two threads); the torchrun tests run them compiled.
    monkeypatch.setattr(sync_kernels, "difference", sync_kernels.difference.py_func)
    monkeypatch.setattr(sync_kernels, "apply", sync_kernels.apply.py_func)
    rng = np.random.default_rng(0)
    start = rng.standard_normal((6000, 4)).astype(np.float32)
    bias = rng.standard_normal(6000).astype(np.float32)
    # rank 0 touches rows 0-99, rank 1 rows 50-149 (50 in common): a sparse sync
    updates = [np.zeros_like(start), np.zeros_like(start)]
    updates[0][:100] = rng.standard_normal((100, 4))
    updates[1][50:150] = rng.standard_normal((100, 4))
    bias_updates = [np.zeros_like(bias), np.zeros_like(bias)]
    bias_updates[1][7] = 1.5
    loop = _Loopback()
    ends: list[dict[str, np.ndarray]] = [{}, {}]

    def rank(r: int) -> None:
        group = loop.group(r, mode, reduce)
        state = {"table": start.copy(), "bias": bias.copy()}
        group.begin(state)
        state["table"] += updates[r]
        state["bias"] += bias_updates[r]
        group.sync(state)
        ends[r] = state
        assert (group.stats["rows"] > 0) == (mode in ("rows", "auto"))

    threads = [threading.Thread(target=rank, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    scale = 0.5 if reduce == "mean" else 1.0
    expected = start + scale * (updates[0] + updates[1])
    for r in (0, 1):
        np.testing.assert_allclose(ends[r]["table"], expected, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(ends[r]["bias"], bias + scale * (bias_updates[0] + bias_updates[1]), atol=1e-6)
    np.testing.assert_array_equal(ends[0]["table"], ends[1]["table"])  # bit for bit on both ranks


def test_a_share_of_rows_reads_only_the_groups_that_hold_it(tmp_path):
    """``read_table(rows=...)`` against the whole table sliced, for ranges inside one group, across several,
    empty and whole; ``row_groups`` names exactly the groups that meet the range."""
    from itemvec.data.store import read_table, row_groups

    path = tmp_path / "t.parquet"
    values = np.arange(1000, dtype=np.int64) * 7
    pq.write_table(pa.table({"v": values}), path, row_group_size=128)  # 8 groups, the last of 104 rows
    metadata = pq.ParquetFile(path).metadata
    rng = np.random.default_rng(0)
    for lo, hi in [(0, 1000), (0, 0), (500, 500), (0, 128), (128, 256), (127, 129), (999, 1000),
                   *map(tuple, np.sort(rng.integers(0, 1001, (20, 2)), axis=1))]:
        table = read_table(path, {"v": "integer"}, rows=(int(lo), int(hi)))
        np.testing.assert_array_equal(table["v"].to_numpy(), values[lo:hi])
        groups, first = row_groups(metadata, int(lo), int(hi))
        assert groups == [g for g in range(8) if g * 128 < hi and (g + 1) * 128 > lo]
        assert first == (groups[0] * 128 if groups else lo)


def test_a_rank_walks_the_single_process_walks_of_its_rows():
    from itemvec.graph.csr import CSRGraph
    from itemvec.graph.walks import random_walks

    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 300, 2000), rng.integers(0, 300, 2000)
    keep = a < b
    graph = CSRGraph.from_pairs(a[keep], b[keep], rng.random(int(keep.sum())) + 0.1, n_nodes=310)
    for p, q in ((1.0, 1.0), (0.5, 2.0)):
        whole = random_walks(graph, walks_per_node=3, walk_length=12, p=p, q=q, seed=9, threads=1)
        n = len(whole)
        for lo, hi in ((0, n), (0, n // 2), (n // 2, n), (n // 3 + 5, 2 * n // 3), (n - 1, n), (7, 7)):
            np.testing.assert_array_equal(random_walks(graph, walks_per_node=3, walk_length=12, p=p, q=q, seed=9,
                                                       threads=2, rows=(lo, hi)), whole[lo:hi])


def test_ranks_holding_their_own_rows_step_together_over_each_row_once():
    """``Shard`` with ``own_rows``: every rank has the same number of steps (from every rank's rows), and a
    rank's steps cover its epoch order once, in equal slices."""
    from itemvec.data.types import share_of
    from itemvec.train import RowSteps

    for total, world, batch in ((10, 2, 3), (1001, 3, 100), (5, 4, 1024), (3, 4, 1)):
        steps_seen = set()
        for rank in range(world):
            lo, hi = share_of(total, rank, world)
            steps = RowSteps(hi - lo, batch)
            steps.shard, steps.own_rows, steps.total_rows = (rank, world), hi - lo, total
            steps.begin_epoch(0, 5)
            n = steps.steps_per_epoch()
            steps_seen.add(n)
            chunks = [steps.chunk(s) for s in range(n)]
            np.testing.assert_array_equal(np.concatenate(chunks), steps.order)
            assert max(map(len, chunks)) - min(map(len, chunks)) <= 1
        assert steps_seen == {max(1, -(-total // batch))}
