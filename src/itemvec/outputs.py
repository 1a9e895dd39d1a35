"""Output folders: what itemvec may write into, one writer at a time, every file replaced atomically.

The user's files are sacred. ``--out`` is accepted only when it is

- a path that does not exist (it is created, with the user's umask, like ``mkdir``),
- an empty folder, or
- a folder that itemvec itself wrote, of the same kind (``data``, ``run``, ``report``), holding nothing but
  the names itemvec writes there. itemvec recognises its folders by the marker ``.itemvec.json`` it writes
  first (and, for folders of earlier versions, by their manifest or model files).

Anything else (a regular file, a symbolic link, a folder with files of the user's, a folder of another kind, a
folder that holds one of the inputs) is refused with one line naming the path, before anything is touched.

An accepted folder is locked (``flock`` on ``.itemvec.lock``, which holds the writer's process id) for as
long as the job runs, so a second writer gets "DIR is in use by process N" instead of mixing its results
with the first's. Files are written under a fresh temporary name in their own folder and renamed into place
(:func:`atomic_write`), so a symbolic link at the final name is replaced, never followed, and an interrupted
job leaves the previous file whole. A DATA_DIR is built complete in a temporary sibling folder and exchanged
with the old one in one ``renameat2(RENAME_EXCHANGE)`` (:meth:`OutputFolder.build`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import fnmatch
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from itemvec.errors import Interrupted, OutputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MARKER = ".itemvec.json"
LOCK = ".itemvec.lock"
KINDS = {
    "data": ("manifest.json", "products.parquet", "id_map.parquet", "pairs.parquet", "split",
             "sequences.parquet", "sequences_train.parquet", "users.parquet", "items.parquet", "ratings"),
    "run": ("config.toml", "model.json", "weights.npz", "history.jsonl", "train.json", "metrics.json",
            "curves.npz", "checkpoint.npz", "resolved.toml", "*.png", "index.json", "index*.faiss"),
    "report": ("report.md", "report.html", "metrics.json", "*.png", "runs", "tuning"),
}
# Our own bookkeeping and temporary names, in every kind of folder.
_OURS = (MARKER, LOCK, ".*.tmp-*")
DESCRIPTION = {"data": "prepared data folder (DATA_DIR)", "run": "run folder (RUN_DIR)",
               "report": "report folder (REPORT_DIR)"}


def umask() -> int:
    """The process's umask (os.umask can only be read by setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _known(name: str, kind: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in (*KINDS[kind], *_OURS))


def folder_kind(path: Path) -> str | None:
    """The kind of itemvec folder ``path`` is ("data", "run", "report"), or None."""
    marker = path / MARKER
    if marker.is_file() and not marker.is_symlink():
        try:
            kind = json.loads(marker.read_text(encoding="utf-8")).get("kind")
        except (OSError, ValueError, AttributeError):
            kind = None
        if kind in KINDS:
            return kind
    # Folders written before the marker existed.
    manifest = path / "manifest.json"
    if manifest.is_file():
        try:
            values = json.loads(manifest.read_bytes())
        except (OSError, ValueError):
            values = None
        if isinstance(values, dict) and "n_items" in values and (
                "pairs_per_part" in values or values.get("kind") == "ratings"):
            return "data"
    if (path / "metrics.json").is_file() and ((path / "report.html").is_file() or (path / "runs").is_dir()):
        return "report"
    if (path / "model.json").is_file() or (path / "config.toml").is_file():
        return "run"
    return None


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def check_output(path: str | Path, kind: str, inputs: Sequence[str | Path | None] = ()) -> None:
    """Refuse (OutputError, one line) an ``--out`` that itemvec may not write into; see the module docstring."""
    path = Path(path)
    for item in inputs:
        if item is not None and _inside(Path(item), path):
            where = "is the input" if Path(item).resolve() == path.resolve() else f"holds the input {item}"
            raise OutputError(f"{path}: {where}; choose an output folder outside the inputs")
    if path.is_symlink():
        raise OutputError(f"{path}: is a symbolic link; give the folder itself ({os.path.realpath(path)}) or a "
                          "new folder")
    if not path.exists():
        return
    if not path.is_dir():
        raise OutputError(f"{path}: is a file, not a folder; --out must be a new or empty folder, or a "
                          f"{DESCRIPTION[kind]} itemvec wrote")
    try:
        names = sorted(os.listdir(path))
    except OSError as exc:
        raise OutputError(f"{path}: cannot be read ({exc.strerror})") from None
    if not names:
        return
    found = folder_kind(path)
    if found is None:
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        raise OutputError(f"{path}: is not empty and not written by itemvec (it holds {shown}); choose a new or "
                          "empty folder")
    if found != kind:
        raise OutputError(f"{path}: is an itemvec {DESCRIPTION[found]}, not a {DESCRIPTION[kind]}; choose "
                          "another folder")
    foreign = [name for name in names if not _known(name, kind)]
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise OutputError(f"{path}: holds files itemvec did not write ({shown}); move them or choose another "
                          "folder")


def _write_marker(folder: Path, kind: str) -> None:
    with atomic_write(folder / MARKER, "w") as handle:
        handle.write(json.dumps({"written_by": "itemvec", "kind": kind}) + "\n")


class OutputFolder:
    """``with OutputFolder(path, kind, inputs=...) as out:`` checks, creates, marks and locks ``path``.

    On leaving, the lock is released; a folder this job created is removed again when the job failed before
    writing anything into it, so a refused or interrupted first run leaves nothing behind.
    """

    def __init__(self, path: str | Path, kind: str, *, inputs: Sequence[str | Path | None] = ()) -> None:
        self.path = Path(path)
        self.kind = kind
        self.inputs = inputs
        self.created = False
        self.built = False  # build() exchanged the new contents in
        self._lock_fd: int | None = None

    def __enter__(self) -> OutputFolder:
        check_output(self.path, self.kind, self.inputs)
        if not self.path.exists():
            self.path.mkdir(parents=True)  # mode 0o777 less the umask, as mkdir(1)
            self.created = True
        try:
            self._lock()
            marker = self.path / MARKER
            if marker.is_symlink() or not marker.is_file():
                _write_marker(self.path, self.kind)
            self._clean_stale()
        except BaseException:
            self._release(failed=True)
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._release(failed=kind is not None)
        if isinstance(value, Interrupted) and value.kept is None and self.kind == "data":
            if self.built:
                value.kept = f"{self.path} had been written completely just before"
            else:
                value.kept = f"{self.path} was left as it was" if self.path.exists() else "nothing was written"

    def _lock(self) -> None:
        lock = self.path / LOCK
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise OutputError(f"{lock}: is a symbolic link; remove it") from None
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise OutputError(f"{self.path} is in use by process {holder}; wait for it to finish or choose "
                              "another folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _clean_stale(self) -> None:
        """Temporary files and folders of an earlier job on this folder that was killed (we hold the lock, so
        no live job owns them)."""
        for entry in self.path.iterdir():
            if fnmatch.fnmatchcase(entry.name, ".*.tmp-*"):
                _remove(entry)
        for entry in self.path.parent.glob(f".{self.path.name}.tmp-*"):
            if entry.is_dir() and not entry.is_symlink() and (entry / MARKER).is_file():
                _remove(entry)

    def _release(self, failed: bool) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        if failed and self.created:
            leftovers = {p.name for p in self.path.iterdir()} if self.path.is_dir() else set()
            if leftovers <= {MARKER, LOCK}:
                shutil.rmtree(self.path, ignore_errors=True)

    @contextlib.contextmanager
    def build(self) -> Iterator[Path]:
        """Yield a fresh temporary folder beside this one; when the block succeeds, its contents become this
        folder's in one exchange and the old contents are removed. A failed or interrupted block leaves this
        folder exactly as it was."""
        while True:
            tmp = self.path.parent / f".{self.path.name}.tmp-{secrets.token_hex(6)}"
            _LIVE.add(tmp)
            try:
                os.mkdir(tmp, 0o777)  # the umask applies, as for mkdir(1)
                break
            except FileExistsError:
                _LIVE.discard(tmp)  # not ours: never removed
        try:
            _write_marker(tmp, self.kind)
            yield tmp
            exchange(tmp, self.path)  # tmp now holds the old contents
            self.built = True
        finally:
            _remove_all(tmp)
            _LIVE.discard(tmp)

def _remove_all(path: Path) -> None:
    """Remove ``path`` even when a signal lands half-way: finish the removal, then let the signal unwind."""
    pending = None
    while True:
        try:
            _remove(path)
            break
        except BaseException as exc:  # Interrupted, KeyboardInterrupt: the handler ignores any later signal
            pending = exc
    if pending is not None:
        raise pending


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(a: Path, b: Path) -> None:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); where the system lacks it, two renames."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is not None:
        if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(code, os.strerror(code), str(b))
    aside = b.with_name(f".{b.name}.tmp-old-{os.getpid()}")
    os.replace(b, aside)
    os.replace(a, b)
    os.replace(aside, a)


_LIVE: set[Path] = set()  # temporaries this process has under way; see remove_temporaries()


def remove_temporaries() -> None:
    """Remove every temporary file or folder this process still has under way. The job's guard calls it when
    a job ends, so that a signal landing anywhere (even inside a context manager's own enter or exit, where
    no ``except`` of ours runs) leaves no ``.NAME.tmp-*`` behind."""
    while _LIVE:
        _remove_all(_LIVE.pop())


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a fresh temporary file beside ``path`` (never a name that exists, so never through a link) with
    the permissions of a new file under the umask; rename it to ``path`` when the block succeeds.

    The temporary name is registered before the file is created and forgotten only once it is renamed or
    removed, so the guard's :func:`remove_temporaries` finds it whatever point a signal lands at."""
    path = Path(path)
    while True:
        tmp = path.parent / f".{path.name}.tmp-{secrets.token_hex(6)}"
        _LIVE.add(tmp)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
            break
        except FileExistsError:
            _LIVE.discard(tmp)  # not ours: never removed
    try:
        options: dict[str, Any] = {} if "b" in mode else {"encoding": "utf-8"}
        handle = os.fdopen(fd, mode, **options)
        with handle:
            os.fchmod(handle.fileno(), 0o666 & ~umask())
            yield handle
        os.replace(tmp, path)
    except BaseException:
        _remove_all(tmp)
        raise
    finally:
        _LIVE.discard(tmp)


def write_text(path: str | Path, text: str) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(text)


def write_json(path: str | Path, obj: object) -> None:
    write_text(path, json.dumps(obj, indent=2, default=float) + "\n")


def save_npz(path: str | Path, arrays: Mapping[str, Any]) -> None:  # name → array (np.savez's keywords)
    import numpy as np

    with atomic_write(path) as handle:
        np.savez(handle, **arrays)


MMAP_FROM_BYTES = 1 << 16  # arrays at least this large are memory-mapped by load_npz(mmap=True)


def load_npz(path: str | Path, *, mmap: bool = False) -> dict[str, Any]:
    """The arrays of an .npz file (``save_npz`` writes them stored, not compressed). With ``mmap``, each large
    array is a copy-on-write memory map of its bytes in the file: pages are read when first touched and shared
    between processes that map the same file, and nothing is copied at load. Raises OSError, ValueError,
    EOFError or zipfile.BadZipFile on a file that is not such an archive."""
    import struct
    import zipfile

    import numpy as np

    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files} if not mmap else {}
        if not mmap:
            return arrays
        with zipfile.ZipFile(path) as archive, open(path, "rb") as raw:
            for info in archive.infolist():
                key = info.filename.removesuffix(".npy")
                if info.compress_type != zipfile.ZIP_STORED or info.file_size < MMAP_FROM_BYTES:
                    arrays[key] = npz[key]
                    continue
                raw.seek(info.header_offset)
                local = raw.read(30)  # the local file header: its name and extra field lengths end it
                if len(local) < 30 or local[:4] != b"PK\x03\x04":
                    raise ValueError(f"{info.filename}: no local header where the archive's directory says")
                name_length, extra_length = struct.unpack("<HH", local[26:30])
                raw.seek(info.header_offset + 30 + name_length + extra_length)
                version = np.lib.format.read_magic(raw)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(raw)
                if dtype.hasobject:
                    raise ValueError(f"{info.filename}: holds Python objects")
                mapped = np.memmap(path, dtype=dtype, mode="c", offset=raw.tell(), shape=shape,
                                   order="F" if fortran else "C")
                arrays[key] = np.asarray(mapped)  # a plain ndarray over the map (which it keeps alive)
    return arrays


def save_figure(fig: Figure, path: str | Path, **kwargs: Any) -> None:
    with atomic_write(path) as handle:
        fig.savefig(handle, format="png", **kwargs)


def check_output_file(path: str | Path, ours: Callable[[Path], bool]) -> None:
    """Refuse an output *file* that exists and that ``ours(path)`` cannot tell itemvec wrote, or that is a
    folder or a symbolic link."""
    path = Path(path)
    if path.is_symlink():
        raise OutputError(f"{path}: is a symbolic link; give a new file name")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; --out must be a file name")
    if path.exists() and not ours(path):
        raise OutputError(f"{path}: exists and was not written by itemvec; choose a new file name")


def safe_name(spec: str) -> str:
    """A file or folder name for a model spec such as ``mf@labels=continuous`` that cannot leave its folder:
    letters, digits and ``.-_=`` only, no leading dot."""
    plain = spec.replace("@", "_")
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "-_=.") else "_" for c in plain).lstrip(".")
    if cleaned != plain or len(cleaned) > 100:  # characters were replaced: keep distinct specs distinct
        cleaned = f"{cleaned[:100]}-{hashlib.sha1(spec.encode()).hexdigest()[:8]}"
    return cleaned
