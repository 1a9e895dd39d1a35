"""Data-parallel training on ``torch.distributed`` (gloo), launched by ``torchrun`` (issue 16).

    torchrun --standalone --nproc-per-node 2 -m itemvec train mf-bias --data D --out R --set distributed=true

Every rank (one process) builds the same model from the same seed and trains its share of every step, with the
model's own numba kernel and its own stream of random draws. The pair models (``reads_share``) read only the
rank's own rows of the train part (``data.types.RankShare``, ``data.store.shard``: the Parquet row groups that
hold them) and take the figures over the whole catalogue, degrees and counts, summed over the ranks; the walk
models read the whole graph and make only the rank's rows of the walks. A rank that holds its own rows
shuffles them every epoch and splits them into as many steps as the whole run has (``train.Shard``); one that
holds every row trains ``chunk(s)[rank::world]`` of the single process's step s. Every ``sync_every`` steps,
and at the end of every epoch and before every validation figure, the ranks add up their updates since the
last sync (one all-reduce per table, ``Group.sync``): the tables become ``snapshot + Σ_ranks (table_r −
snapshot)`` (or the mean of the updates with ``sync_reduce="mean"``) on every rank, bit for bit the same. Sum
is the default: each example's update counts once, as in the single process, so an epoch makes a single-
process epoch's progress; the mean divides the progress of rows only one rank touched by the world size.

A sync sends either the dense tables or only the rows some rank touched since the last sync: one byte per row
(an all-reduce MAX of each rank's touched-row mask), then those rows' updates. ``sync="auto"`` sends the rows
when fewer than half of a table's rows were touched, else the dense table.

Rank 0 evaluates on the validation part, decides early stopping and broadcasts the decision, writes the
checkpoint and the run; on resume it reads the checkpoint and broadcasts the state, so the other ranks need
no copy of RUN_DIR. A checkpoint records the world size and is refused by another one.

A rank that dies or stops answering ends the others with one line naming the rank and a non-zero exit
(``PeerLost``): a collective waits at most ``sync_timeout`` seconds (the process group's timeout).

torchrun sets, and itemvec reads: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE (threads per rank default to
the cores over the local ranks), MASTER_ADDR and MASTER_PORT (the rendezvous, read by torch).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar, cast

import numpy as np

from itemvec.errors import ConfigError, InputError, ItemvecError

T = TypeVar("T")

SMALL = 4096  # tables of at most this many entries always go dense
ACCUMULATOR = "acc_"  # the state names of Adagrad accumulators: averaged, not summed, with sync_reduce="sum"


class PeerLost(ItemvecError):
    """Another rank died or stopped answering within the process group's timeout."""

    exit_code = 1


def environment_rank() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) outside it."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def world_size(settings: Any) -> int | None:
    """The world size a distributed run with these TrainSettings has (recorded in its checkpoints); None when
    the run is not distributed."""
    if not getattr(settings, "distributed", False):
        return None
    if "WORLD_SIZE" not in os.environ:
        raise ConfigError("distributed=true needs the processes torchrun starts (WORLD_SIZE is not set): run "
                          "torchrun --standalone --nproc-per-node 2 -m itemvec train ... --set distributed=true")
    return environment_rank()[1]


def leave_if_joined(code: int) -> None:
    """End this process now with ``code`` when it joined a process group (flushing stdout and stderr first):
    what it had to do, write and say is done. The interpreter's own teardown would destroy the gloo group's
    C++ objects while its threads may still be at work on a closed peer's socket, which can abort the process
    ("terminate called without an active exception", exit -6) after its one-line error or its last line."""
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be said on it
            pass
    os._exit(code)


def rank_threads(threads: int) -> int:
    """Numba threads per rank: ``threads``, or with 0 the cores shared among the ranks on this machine."""
    if threads > 0:
        return threads
    local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, (os.cpu_count() or 1) // local)


def mix_seed(seed: int, rank: int) -> int:
    """A rank's own stream of draws for a step (rank 0 keeps the single process's)."""
    return (seed ^ (rank * 0x9E3779B97F4A7C15)) & 0xFFFFFFFFFFFFFFFF if rank else seed


class Group:
    """This process's place in the process group, and the sync of a Trainable's tables (module docstring)."""

    def __init__(self, settings: Any) -> None:
        import torch
        import torch.distributed as dist

        self.torch, self.dist = torch, dist
        self.rank, self.world = environment_rank()
        self.timeout = settings.sync_timeout
        self.mode, self.reduce = settings.sync, settings.sync_reduce
        if not dist.is_initialized():
            try:
                dist.init_process_group("gloo", timeout=timedelta(seconds=self.timeout))
            except (RuntimeError, ValueError) as exc:
                raise PeerLost(f"rank {self.rank} of {self.world}: could not join the other ranks at "
                               f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')} "
                               f"within {self.timeout:g} s ({_first_line(exc)})") from None
        self.snapshot: dict[int, np.ndarray] = {}
        self._scratch: np.ndarray | None = None
        self.stats = {"syncs": 0, "dense": 0, "rows": 0, "payload_bytes": 0, "collective_seconds": 0.0,
                      "touched_fraction_sum": 0.0, "touched_tables": 0}

    # ---------------------------------------------------------------- collectives

    def _call(self, what: str, work: Any) -> Any:
        started = time.perf_counter()
        try:
            return work()
        except Exception as exc:  # gloo: RuntimeError / DistBackendError on a closed peer or a timeout
            raise PeerLost(f"rank {self.rank} of {self.world}: the other ranks stopped answering during {what} "
                           f"(waited at most {self.timeout:g} s; a rank died or hangs: see its own message); "
                           f"rerun the same command to resume from the last checkpoint ({_first_line(exc)})"
                           ) from None
        finally:
            self.stats["collective_seconds"] += time.perf_counter() - started

    def all_reduce(self, array: np.ndarray, op: str = "sum", what: str = "a sync") -> None:
        """Reduce ``array`` (contiguous) in place over the ranks."""
        tensor = self.torch.from_numpy(array)
        reduce_op = self.dist.ReduceOp.MAX if op == "max" else self.dist.ReduceOp.SUM
        self._call(what, lambda: self.dist.all_reduce(tensor, op=reduce_op))
        self.stats["payload_bytes"] += array.nbytes

    def broadcast(self, array: np.ndarray, what: str = "the broadcast of rank 0's state") -> None:
        tensor = self.torch.from_numpy(np.ascontiguousarray(array))
        self._call(what, lambda: self.dist.broadcast(tensor, src=0))
        if tensor.data_ptr() != array.__array_interface__["data"][0]:
            array[...] = tensor.numpy()

    def broadcast_int(self, value: int) -> int:
        box = np.array([value], dtype=np.int64)
        self.broadcast(box, what="the broadcast of rank 0's decision")
        return int(box[0])

    def sum_floats(self, *values: float) -> list[float]:
        box = np.array(values, dtype=np.float64)
        self.all_reduce(box, what="the sum of the losses")
        return [float(v) for v in box]

    def agree(self, identity: dict[str, Any]) -> None:
        """Refuse, on every rank, to train when the ranks were started with different models, settings or data
        (each rank's run identity: the model, its settings and the DATA_DIR's fingerprint)."""
        import hashlib
        import json

        own = np.frombuffer(hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).digest(), dtype=np.uint8)
        first = own.copy()
        self.broadcast(first, what="the check that every rank runs the same job")
        differs = np.array([int(not np.array_equal(first, own))], dtype=np.int64)
        self.all_reduce(differs, what="the check that every rank runs the same job")
        if differs[0]:
            raise ConfigError(f"rank {self.rank} of {self.world}: the ranks were started with different models, "
                              f"settings or data ({differs[0]} of them differ from rank 0); every rank needs the "
                              "same command and the same prepared DATA_DIR")

    def together(self, what: str, work: Callable[[], T]) -> T:
        """``work()`` on every rank, then one all-reduce of whether it failed anywhere: the rank whose data (or
        settings) were refused raises its own one-line error, and every other rank refuses too, at once,
        instead of waiting out ``sync_timeout`` in the next collective."""
        try:
            result, failed = work(), None
        except ItemvecError as exc:
            result, failed = None, exc
        flags = np.zeros(self.world, dtype=np.int64)
        flags[self.rank] = failed is not None
        self.all_reduce(flags, what=what)
        if failed is not None:
            raise failed
        if flags.any():
            ranks = ", ".join(str(r) for r in np.flatnonzero(flags))
            raise InputError(f"rank {self.rank} of {self.world}: rank {ranks} refused {what} (see its own message); "
                             "nothing was trained")
        return cast(T, result)

    def barrier(self) -> None:
        self._call("the last barrier", lambda: self.dist.barrier())

    def close(self) -> None:
        if self.dist.is_initialized():
            self.dist.destroy_process_group()

    # ---------------------------------------------------------------- tables

    @staticmethod
    def _tables(state: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [array for _, array in Group._named(state)]

    @staticmethod
    def _named(state: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
        seen, out = set(), []
        for name, array in state.items():  # one table may appear under two names (mf with one role)
            if id(array) not in seen:
                seen.add(id(array))
                out.append((name, array))
        return out

    def share(self, state: dict[str, np.ndarray]) -> None:
        """Make every rank's tables rank 0's, and remember them as the point the next sync counts from."""
        for table in self._tables(state):
            self.broadcast(table)
        self.begin(state)

    def begin(self, state: dict[str, np.ndarray]) -> None:
        self.snapshot = {id(t): t.copy() for t in self._tables(state)}

    def sync(self, state: dict[str, np.ndarray]) -> None:
        """Add up every rank's updates since the last sync (module docstring); the tables end the same on all."""
        from itemvec import sync_kernels  # numba, loaded by the first sync only

        self.stats["syncs"] += 1
        for name, table in self._named(state):
            # summed updates, except the accumulators a rank grew by world × its own squared gradients
            mean = self.reduce == "mean" or name.startswith(ACCUMULATOR)
            scale = 1.0 / self.world if mean else 1.0
            snap = self.snapshot[id(table)]
            rows_2d, snap_2d = table.reshape(len(table), -1), snap.reshape(len(snap), -1)
            delta = self._buffer(rows_2d.shape, table.dtype)
            mask = np.empty(len(table), dtype=np.uint8)
            sync_kernels.difference(rows_2d, snap_2d, delta, mask)
            rows = self._touched(mask) if self.mode != "dense" and table.size > SMALL else None
            if rows is None:
                self.stats["dense"] += 1
                self.all_reduce(delta)
                sync_kernels.apply(rows_2d, snap_2d, delta, np.zeros(0, dtype=np.int64), scale)
            else:
                # untouched rows: no rank changed them, so the table already equals the snapshot there
                self.stats["rows"] += 1
                part = np.ascontiguousarray(delta[rows])
                self.all_reduce(part)
                sync_kernels.apply(rows_2d, snap_2d, part, rows, scale)

    def _buffer(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """One reusable (rows, width) array for a table's difference: one table's worth of memory at a time."""
        size = int(np.prod(shape))
        scratch = getattr(self, "_scratch", None)
        if scratch is None or scratch.size < size or scratch.dtype != dtype:
            scratch = self._scratch = np.empty(size, dtype=dtype)
        return scratch[:size].reshape(shape)

    def _touched(self, mask: np.ndarray) -> np.ndarray | None:
        """The rows some rank changed (an all-reduce MAX of each rank's one byte per row), or None when the
        dense table is the cheaper message (``auto``: at least half the rows)."""
        self.all_reduce(mask, op="max")
        rows = np.flatnonzero(mask)
        fraction = len(rows) / max(len(mask), 1)
        self.stats["touched_fraction_sum"] += fraction
        self.stats["touched_tables"] += 1
        if self.mode == "auto" and fraction >= 0.5:
            return None
        return rows

    def digest(self, state: dict[str, np.ndarray]) -> str:
        """sha256 of the tables (by name, in order): the same on every rank after a sync."""
        import hashlib

        h = hashlib.sha256()
        for name in sorted(state):
            h.update(name.encode())
            h.update(np.ascontiguousarray(state[name]).tobytes())
        return h.hexdigest()

    def summary(self, epochs_run: int) -> dict[str, Any]:
        """What the syncs cost, for train.json: payload bytes (what each rank hands to the all-reduces; a ring
        all-reduce sends 2 (world − 1) / world of it per rank), per sync and per epoch, and the seconds in
        collectives (waiting for the slowest rank included)."""
        s = self.stats
        syncs = max(s["syncs"], 1)
        return {"world_size": self.world, "sync": self.mode, "sync_reduce": self.reduce, "syncs": s["syncs"],
                "dense_tables": s["dense"], "row_tables": s["rows"],
                "touched_fraction": round(s["touched_fraction_sum"] / s["touched_tables"], 4)
                if s["touched_tables"] else None,
                "payload_bytes": s["payload_bytes"], "payload_bytes_per_sync": s["payload_bytes"] // syncs,
                "payload_bytes_per_epoch": s["payload_bytes"] // max(epochs_run, 1),
                "sent_bytes_per_rank_per_sync": int(s["payload_bytes"] / syncs * 2 * (self.world - 1) / self.world),
                "collective_seconds": round(s["collective_seconds"], 3)}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
