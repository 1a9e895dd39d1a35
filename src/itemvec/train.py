"""The one training loop. A model supplies a ``Trainable`` (its steps); the trainer owns everything else:
the learning-rate schedule, seeds, validation every N steps into the learning-curve history, checkpoints
and resume, and the progress bar.

A step is a chunk of training examples. The step function is the model's: a fused numba kernel for the MF
family (sparse row updates, Hogwild across cores, as word2vec does), or a torch forward/backward/optimiser
step for torch models. Either way it receives the learning rate at the start and end of its chunk, so the
schedule is followed smoothly inside a step (in the numba kernels, by the step's progress counted over
every thread, so that it holds for any thread count: `kernels.lanes`).

Schedules (``lr`` is the initial rate, 0.01 in the reference study):
- ``cosine-restarts``: cosine annealing from ``lr`` to ``lr * min_lr_fraction`` within each epoch, restarting
  at every epoch (the reference study's schedule);
- ``cosine``: one cosine annealing over the whole run;
- ``linear``: linear decay from ``lr`` to ``lr * min_lr_fraction`` over the whole run (word2vec's schedule);
- ``constant``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol, cast

import numpy as np

from itemvec import distributed as dist
from itemvec.config import (  # noqa: F401 (SCHEDULES re-exported: the models import it from here)
    SCHEDULES,
    BatchSize,
    Choices,
    Epochs,
    EvalEvery,
    Range,
    Rate,
    RateFloor,
    Schedule,
    Seed,
    Threads,
)
from itemvec.costs import max_rss_mb
from itemvec.errors import ConfigError, InputError, Interrupted
from itemvec.outputs import save_npz, write_text
from itemvec.parallel import thread_limit
from itemvec.progress import LineProgress, progress_bar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


def learning_rate(schedule: str, lr: float, step: float, steps_per_epoch: int, epochs: int,
                  min_lr_fraction: float = 1e-3) -> float:
    """The rate at global position ``step`` (may be fractional progress through the run, in steps)."""
    floor = lr * min_lr_fraction
    if schedule == "constant":
        return lr
    if schedule == "cosine-restarts":
        fraction = (step % steps_per_epoch) / steps_per_epoch if step < steps_per_epoch * epochs else 1.0
    elif schedule == "cosine":
        fraction = min(step / (steps_per_epoch * epochs), 1.0)
    elif schedule == "linear":
        return lr - (lr - floor) * min(step / (steps_per_epoch * epochs), 1.0)
    else:
        raise ValueError(f"unknown schedule {schedule!r}; expected one of {SCHEDULES}")
    return floor + 0.5 * (lr - floor) * (1.0 + math.cos(math.pi * fraction))


def step_seed(seed: int, epoch: int, step: int) -> int:
    """An independent 63-bit seed per (run seed, epoch, step): resuming at any epoch replays the same draws."""
    return int(np.random.SeedSequence([seed, epoch, step]).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def run_identity(model: str, config: DataclassInstance, data_fingerprint: str | None) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the model, its resolved settings and the data (and, for a
    distributed run, its world size: another one would split the work differently)."""
    identity: dict[str, Any] = {"model": model, "config": dataclasses.asdict(config), "data": data_fingerprint}
    world = dist.world_size(getattr(config, "train", None))
    if world is not None:
        identity["world_size"] = world
    return json.loads(json.dumps(identity))


def checkpoint_identity(path: Path) -> dict[str, Any] | None:
    """The identity recorded in a checkpoint (None for an unreadable one or one of an earlier version)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return json.loads(npz["_identity"].tobytes().decode()) if "_identity" in npz.files else None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


RESTART_HINT = "rerun with --no-resume to start over"


def refuse_foreign_checkpoint(path: Path, recorded: dict[str, Any] | None, identity: dict[str, Any]) -> None:
    """An InputError naming what differs when a checkpoint was left by another run (``recorded`` is its
    identity, None for one of an earlier version): resuming it would mix the two runs."""
    if recorded == identity:
        return
    differs = [key for key in ("model", "config", "data", "world_size")
               if (recorded or {}).get(key) != identity.get(key)]
    what = {"model": "another model", "config": "other settings", "data": "other data (another DATA_DIR or split)",
            "world_size": "another number of processes (world size)"}
    raise InputError(f"{path}: left by a run of {' and '.join(what[k] for k in differs) or 'another kind'}; "
                     f"resuming it would mix the two runs; {RESTART_HINT}")


def dist_models() -> list[str]:
    """The registered models that train distributed (``distributable``), as "name" or "name (kind)"."""
    from itemvec import registry

    out = []
    for kind in registry.KINDS:
        for name in registry.names(kind):
            if getattr(registry.get(name, kind), "distributable", False):
                out.append(name if kind == "pairs" else f"{name} ({kind})")
    return out


def refuse_undistributable(model: Any, name: str) -> None:
    """A ConfigError unless ``model`` (a model or its class) trains distributed."""
    if not getattr(model, "distributable", False):
        raise ConfigError(f"{name} does not train distributed; the models that do: {', '.join(dist_models())}")


class Trainable(Protocol):
    def steps_per_epoch(self) -> int: ...

    def begin_epoch(self, epoch: int, seed: int) -> None: ...

    def train_step(self, step: int, lr_start: float, lr_end: float, seed: int) -> tuple[float, int]:
        """Train on chunk ``step`` of the epoch; returns (summed loss, examples seen)."""

    def state(self) -> dict[str, np.ndarray]: ...

    def set_state(self, state: dict[str, np.ndarray]) -> None: ...


Patience = Annotated[int, Range(0, 10_000)]


@dataclass(frozen=True)
class TrainSettings:
    """The trainer's settings, declared once and nested in the settings of every model the trainer trains (as
    ``config.train``; a user sets them by their own names, ``--set epochs=3``, see ``config.replace``). Each
    model states its own defaults, measured for it, in its ``Config``."""

    lr: Rate = 0.01  # the initial rate (0.01 in the reference study)
    schedule: Schedule = "cosine"
    min_lr_fraction: RateFloor = 1e-3  # the last rate as a fraction of the first
    epochs: Epochs = 5
    batch_size: BatchSize = 1024  # examples per step: pairs, ratings, triplets or sequences (the model says)
    eval_every: EvalEvery = 0  # steps between validation evaluations; 0: once at the end of each epoch
    threads: Threads = 0  # numba / torch threads for the training; 0: all cores
    seed: Seed = 0
    # Early stopping: stop after this many evaluations without a better validation figure; 0: never (the
    # default until a benchmark shows where it pays). With restore_best, the model ends in the state of its
    # best validation figure instead of its last.
    patience: Patience = 0
    restore_best: bool = True
    # Data-parallel training over torch.distributed, under torchrun (itemvec.distributed): each rank trains its
    # share of every step; the tables are summed every sync_every steps (and at each epoch's end), sending the
    # dense tables or only the rows touched ("auto": whichever is smaller); a collective waits at most
    # sync_timeout seconds for the other ranks.
    distributed: bool = False
    sync_every: Annotated[int, Range(1, 1 << 31)] = 1
    sync: Annotated[str, Choices(("auto", "dense", "rows"))] = "auto"
    sync_reduce: Annotated[str, Choices(("sum", "mean"))] = "sum"
    sync_timeout: Annotated[float, Range(1, 86_400)] = 600.0


class Trainer:
    """Trains a model's Trainable with the settings in ``model.config.train``.

    The rest is this run's: ``evaluate(model)`` gives the validation figure for the learning curve (higher is
    better; None: no curve). ``run_dir``, when given, receives ``history.jsonl`` (rewritten after each
    evaluation) and ``checkpoint.npz`` at the end of every epoch; with ``resume``, a run restarts after the
    last completed epoch and, on one thread, ends with the same weights as a run that was never interrupted.
    A checkpoint records the run's identity (the model, its resolved settings and the data fingerprint); one
    with another identity is refused, never resumed: resuming across data would train on the other split's
    test pairs. The thread limit is set for the training and restored after it.
    """

    def __init__(self, *, evaluate: Callable[[Any], float | None] | None = None, run_dir: str | Path | None = None,
                 resume: bool = True, progress: bool = True, stop_after_epochs: int | None = None,
                 group: dist.Group | None = None) -> None:
        self.evaluate_model = evaluate
        self.evaluate: Callable[[], float | None] | None = None
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.resume = resume
        self.progress = progress
        self.stop_after_epochs = stop_after_epochs  # for tests of interruption: stop as if killed
        self.settings = TrainSettings()
        self.identity: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []
        self.saved_epoch: int | None = None  # the last epoch in checkpoint.npz
        self._best: tuple[float, dict[str, np.ndarray]] | None = None  # early stopping: (figure, state)
        self._since_best = 0
        self._stop = False
        # a distributed run's process group (settings.distributed): given, when the run already joined it to
        # read its share of the data (itemvec.runs), else made here
        self.group: dist.Group | None = group
        self.distributed: dict[str, Any] | None = None  # what its syncs cost, after training

    def train(self, model: Any, trainable: Trainable) -> list[dict[str, Any]]:
        """Run ``trainable`` for ``model`` (its ``config.train`` settings, its name and data fingerprint for the
        checkpoint's identity); returns the learning-curve history."""
        self.settings = model.config.train
        self.identity = run_identity(model.name, model.config, getattr(model, "data_fingerprint", None))
        evaluate_model = self.evaluate_model
        self.evaluate = (lambda: evaluate_model(model)) if evaluate_model else None
        threads = self.settings.threads
        if self.settings.distributed:
            refuse_undistributable(model if hasattr(trainable, "shard") else None, model.name)
            dist.world_size(self.settings)  # refuses outside torchrun
            if self.group is None:
                self.group = dist.Group(self.settings)
            self.group.agree(self.identity)
            shard = cast(Shard, trainable)
            shard.shard = (self.group.rank, self.group.world)
            shard.scaled_accumulators = self.settings.sync_reduce == "sum"
            if shard.own_rows is not None:  # the rank holds only its own rows: the steps count every rank's
                total = np.array([shard.own_rows], dtype=np.int64)
                self.group.all_reduce(total, what="the sum of the ranks' rows")
                shard.total_rows = int(total[0])
            threads = dist.rank_threads(threads)
        with thread_limit(threads):  # process-wide: set for the training, restored after it
            return self._fit(trainable)

    # ---------------------------------------------------------------- checkpoints

    @property
    def _checkpoint(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / "checkpoint.npz"

    def _save_checkpoint(self, trainable: Trainable, epoch: int) -> None:
        if self._checkpoint is None:
            return
        assert self.run_dir is not None  # the checkpoint is in it
        self.run_dir.mkdir(parents=True, exist_ok=True)
        encode = lambda obj: np.frombuffer(json.dumps(obj).encode(), dtype=np.uint8)  # noqa: E731
        best = {} if self._best is None else {f"_best.{k}": v for k, v in self._best[1].items()}
        early = {"best": None if self._best is None else self._best[0], "since_best": self._since_best}
        save_npz(self._checkpoint, {**trainable.state(), "_epoch": np.array(epoch), "_history": encode(self.history),
                                    "_identity": encode(self.identity), "_early": encode(early), **best})
        self.saved_epoch = epoch

    def _load_checkpoint(self, trainable: Trainable) -> int:
        """Returns the first epoch still to run."""
        path = self._checkpoint
        if path is None or not self.resume or not path.exists():
            return 0
        again = RESTART_HINT
        try:
            with np.load(path, allow_pickle=False) as npz:
                state = {k: npz[k] for k in npz.files if not k.startswith("_")}
                epoch = int(npz["_epoch"])
                history = json.loads(npz["_history"].tobytes().decode())
                identity = json.loads(npz["_identity"].tobytes().decode()) if "_identity" in npz.files else None
                early = json.loads(npz["_early"].tobytes().decode()) if "_early" in npz.files else {}
                best = {k[len("_best."):]: npz[k] for k in npz.files if k.startswith("_best.")}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise InputError(f"{path}: not a readable checkpoint ({type(exc).__name__}); {again}") from None
        refuse_foreign_checkpoint(path, identity, self.identity)
        if not 0 <= epoch < self.settings.epochs:
            raise InputError(f"{path}: records epoch {epoch}, outside this run's {self.settings.epochs}; {again}")
        try:
            trainable.set_state(state)
        except (KeyError, ValueError, IndexError, TypeError, RuntimeError) as exc:
            raise InputError(f"{path}: does not fit this model ({type(exc).__name__}: {exc}); {again}") from None
        self.history = history
        self.saved_epoch = epoch
        if early.get("best") is not None:
            self._best = (float(early["best"]), best)
        self._since_best = int(early.get("since_best", 0))
        return epoch + 1

    def _write_history(self) -> None:
        if self.run_dir is None:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_text(self.run_dir / "history.jsonl", "".join(json.dumps(row) + "\n" for row in self.history))

    def _interrupted_note(self) -> str:
        if self._checkpoint is None:
            return "nothing was saved"
        if self.saved_epoch is None:
            return "no epoch had finished, so there is no checkpoint; rerun the same command to start again"
        return (f"kept {self._checkpoint} after epoch {self.saved_epoch + 1} of {self.settings.epochs}; rerun the "
                "same command to resume from it")

    # ---------------------------------------------------------------- the loop

    def _fit(self, trainable: Trainable) -> list[dict[str, Any]]:
        s = self.settings
        steps = trainable.steps_per_epoch()
        group = self.group
        start_epoch = self._load_checkpoint(trainable)
        if group is not None:  # rank 0's checkpoint (or the common initial state) becomes everyone's
            start_epoch = group.broadcast_int(start_epoch)
            group.share(trainable.state())
        started = time.perf_counter()
        total = steps * s.epochs
        examples_total = 0
        bar = progress_bar(total=total, initial=start_epoch * steps, desc="training", unit="step",
                           enabled=self.progress)
        in_log = isinstance(bar, LineProgress)  # no terminal: one line per epoch instead of a bar
        epochs_run = 0
        try:
            for epoch in range(start_epoch, s.epochs):
                if self.stop_after_epochs is not None and epoch >= self.stop_after_epochs:
                    raise KeyboardInterrupt
                epoch_seed = step_seed(s.seed, epoch, -1 & 0xFFFF)
                if group is not None and getattr(trainable, "total_rows", None) is not None:
                    epoch_seed = dist.mix_seed(epoch_seed, group.rank)  # a rank's own rows: its own order
                trainable.begin_epoch(epoch, epoch_seed)
                loss_sum, seen = 0.0, 0
                for step in range(steps):
                    position = epoch * steps + step
                    lr_start = learning_rate(s.schedule, s.lr, position, steps, s.epochs, s.min_lr_fraction)
                    lr_end = learning_rate(s.schedule, s.lr, position + 1 - 1e-9, steps, s.epochs, s.min_lr_fraction)
                    seed = step_seed(s.seed, epoch, step)
                    if group is not None:
                        seed = dist.mix_seed(seed, group.rank)
                    loss, examples = trainable.train_step(step, lr_start, lr_end, seed)
                    loss_sum += loss
                    seen += examples
                    examples_total += examples
                    bar.update(1)
                    elapsed = time.perf_counter() - started
                    bar.set_postfix(epoch=epoch + 1, loss=f"{loss_sum / max(seen, 1):.4f}",
                                    pairs_per_s=f"{examples_total / max(elapsed, 1e-9):,.0f}", refresh=False)
                    last = step == steps - 1
                    due = (s.eval_every > 0 and (position + 1) % s.eval_every == 0) or (s.eval_every <= 0 and last)
                    if group is not None and (due or last or (position + 1) % s.sync_every == 0):
                        group.sync(trainable.state())
                    if due:
                        self._due(trainable, epoch + (step + 1) / steps, position + 1, loss_sum, seen, lr_end,
                                  time.perf_counter() - started)
                    if self._stop:
                        break
                self._save_checkpoint(trainable, epoch)
                epochs_run += 1
                if in_log:
                    val = self.history[-1]["val_auc"] if self.history else None
                    print(f"training: epoch {epoch + 1}/{s.epochs}, loss {loss_sum / max(seen, 1):.4f}"
                          + (f", validation AUC {val:.4f}" if val is not None else "")
                          + f", {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
                if self._stop:
                    break
        except Interrupted as exc:
            exc.kept = exc.kept or self._interrupted_note()
            raise
        finally:
            bar.close()
        if self.settings.restore_best and self._best is not None and (self._stop or self._ended_below_best()):
            trainable.set_state(self._best[1])
            if not self._stop:  # the epochs ran out after the best figure: say so where the curve ends
                self.history[-1]["stopped"] = f"the last epoch ended below the best validation figure " \
                                              f"{self._best[0]:.4f}; restored"
                self._write_history()
        if group is not None:  # rank 0 alone restores a best state: every rank ends with rank 0's tables
            group.share(trainable.state())
            self.distributed = {**group.summary(epochs_run), "tables_sha256": group.digest(trainable.state()),
                                "rank_peak_rss_mb": int(max_rss_mb())}
            if group.rank:
                print(f"rank {group.rank} of {group.world}: trained its share of every step; tables sha256 "
                      f"{self.distributed['tables_sha256']}; peak RSS {self.distributed['rank_peak_rss_mb']} MB "
                      "(rank 0 writes the run)", file=sys.stderr, flush=True)
            group.barrier()
        return self.history

    def _due(self, trainable: Trainable, epoch: float, step: int, loss_sum: float, seen: float, lr: float,
             seconds: float) -> None:
        """A validation figure (and the early-stopping decision) after the step ``step``: on rank 0 only in a
        distributed run, which then tells the others whether to stop; the loss is summed over the ranks."""
        group = self.group
        if group is None:
            self._record(epoch, step, loss_sum / max(seen, 1), lr, seconds)
            self._early_stopping(trainable)
            return
        loss_sum, seen = group.sum_floats(loss_sum, seen)
        if group.rank == 0:
            self._record(epoch, step, loss_sum / max(seen, 1), lr, seconds)
            self._early_stopping(trainable)
        self._stop = bool(group.broadcast_int(int(self._stop)))

    def _ended_below_best(self) -> bool:
        last = self.history[-1]["val_auc"] if self.history else None
        return self._best is not None and last is not None and math.isfinite(last) and last < self._best[0]

    def _early_stopping(self, trainable: Trainable) -> None:
        """With ``patience``: remember the state of the best validation figure; stop after ``patience``
        evaluations without a better one."""
        figure = self.history[-1]["val_auc"]
        if self.settings.patience <= 0 or figure is None or not math.isfinite(figure):
            return
        if self._best is None or figure > self._best[0]:
            state = trainable.state()
            self._best = (figure, {k: np.array(v, copy=True) for k, v in state.items()})
            self._since_best = 0
            return
        self._since_best += 1
        if self._since_best >= self.settings.patience:
            self._stop = True
            restored = ", restored" if self.settings.restore_best else ""
            self.history[-1]["stopped"] = (f"no better validation figure in {self._since_best} evaluations; "
                                           f"best {self._best[0]:.4f}{restored}")
            self._write_history()

    def _record(self, epoch: float, step: int, loss: float, lr: float, seconds: float) -> None:
        val_auc = self.evaluate() if self.evaluate is not None else None
        self.history.append({"step": step, "epoch": round(epoch, 4), "loss": loss, "lr": lr,
                             "val_auc": val_auc, "seconds": round(seconds, 3)})
        self._write_history()


class Shard:
    """A Trainable whose steps can be split among the ranks of a distributed run: ``shard = (rank, world)``,
    set by the trainer, makes ``chunk(step)`` this rank's share of the step.

    Two ways to share. A rank that holds every row (the same rows in the same epoch order on every rank) trains
    every world-th example of the step from the rank-th. A rank that holds only its own rows (``own_rows``,
    set by the model: its share of the train part, or of the walks) trains its own rows in its own epoch
    order, split into as many steps as the whole run has (``total_rows``, every rank's rows, summed by the
    trainer): step s is the s-th of ``steps`` equal slices of them. Outside a distributed run, step s is
    rows ``[s · batch, (s + 1) · batch)`` of the epoch's order either way."""

    shard: tuple[int, int] = (0, 1)
    own_rows: int | None = None  # a rank's own rows when it holds only those (None: it holds every row)
    total_rows: int | None = None  # then every rank's rows (set by the trainer)
    batch = 1

    def n_steps(self, rows: int) -> int:
        """Steps per epoch over ``rows`` rows (every rank's, when a rank holds only its own)."""
        return max(1, -(-(rows if self.total_rows is None else self.total_rows) // self.batch))

    def span(self, step: int, rows: int) -> slice:
        """Where step ``step`` lies in this rank's epoch order of ``rows`` rows, before ``share``."""
        if self.total_rows is None:
            return slice(step * self.batch, (step + 1) * self.batch)
        steps = self.n_steps(rows)
        return slice(step * rows // steps, (step + 1) * rows // steps)

    def share(self, chunk: np.ndarray) -> np.ndarray:
        rank, world = self.shard
        return chunk if world == 1 or self.total_rows is not None else chunk[rank::world]

    def accumulate(self, adagrad: bool) -> float:
        """The weight of a step's squared gradients in an Adagrad accumulator (0: the step is SGD). In a
        distributed run with summed updates, the world size: each rank's accumulator then grows between two
        syncs about as the single process's would with every rank's examples, so that its steps are not the
        larger ones of a rank that sees only its share; the sync then averages the accumulators
        (``distributed.ACCUMULATOR``) and they end where the single process's would."""
        if not adagrad:
            return 0.0
        return float(self.shard[1]) if self.scaled_accumulators else 1.0

    scaled_accumulators = False  # set by the trainer: a distributed run with sync_reduce="sum"


class SequenceSteps(Shard):
    """Steps over sequences (walks or sessions): a fresh shuffle of the sequences every epoch and
    ``batch`` sequences per step. Subclasses implement ``train_step`` over ``self.order``."""

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray, batch: int) -> None:
        self.tokens, self.offsets = tokens, offsets
        self.n_sequences = len(offsets) - 1
        self.batch = max(1, batch)
        self.order = np.arange(self.n_sequences, dtype=np.int64)

    def steps_per_epoch(self) -> int:
        return self.n_steps(self.n_sequences)

    def begin_epoch(self, epoch: int, seed: int) -> None:
        self.order = np.random.default_rng(seed).permutation(self.n_sequences).astype(np.int64)

    def chunk(self, step: int) -> np.ndarray:
        return self.share(self.order[self.span(step, self.n_sequences)])


class RowSteps(Shard):
    """Steps over the rows of parallel arrays (ratings, triplets): a fresh shuffle every epoch and ``batch``
    rows per step. Subclasses implement ``train_step`` over ``self.chunk(step)``."""

    def __init__(self, n_rows: int, batch: int) -> None:
        self.n_rows = n_rows
        self.batch = max(1, batch)
        self.order = np.arange(n_rows, dtype=np.int64)

    def steps_per_epoch(self) -> int:
        return self.n_steps(self.n_rows)

    def begin_epoch(self, epoch: int, seed: int) -> None:
        self.order = np.random.default_rng(seed).permutation(self.n_rows).astype(np.int64)

    def chunk(self, step: int) -> np.ndarray:
        return self.share(self.order[self.span(step, self.n_rows)])
