"""Writing outputs safely: a failed or interrupted command never leaves a half-written output, and
never destroys what streamdsl did not write.

An output directory is recognised as streamdsl's own by a marker file, `.streamdsl-output`, that
every directory written through `atomic_output_dir` holds. A target is replaced only if it is
missing, empty, or holds that marker (or the caller passes `force`); a file, or a directory with
other content, is refused with an `OutputError` that says how to proceed. The new content is built
in a uniquely named staging directory next to the target and swapped in by two renames under an
exclusive lock on the parent directory, so concurrent writers to one target each replace it whole.
Staging and replaced directories carry the writer's pid, and a later call removes those whose
process is gone (a `kill -9` leaves nothing behind for long). Directories get the modes the
user's umask gives.
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from streamdsl.errors import OutputError

__all__ = ["MARKER", "atomic_output_dir", "atomic_output_file", "check_output_dir", "write_json"]

MARKER = ".streamdsl-output"
_SCRATCH = (".staging-", ".old-")  # `.NAME.staging-PID-RAND`, `.NAME.old-PID-RAND`


def check_output_dir(target: str | os.PathLike[str], force: bool = False) -> Path:
    """The absolute path of `target` if a command may replace it; else an `OutputError` (before any
    work is done, so a bad `--out` costs nothing)."""
    path = Path(os.path.abspath(target))
    try:
        mode: int | None = os.lstat(path).st_mode  # one look: a concurrent writer may move it meanwhile
    except (FileNotFoundError, NotADirectoryError):
        mode = None
    if mode is not None and not stat.S_ISDIR(mode):
        what = "a symbolic link" if stat.S_ISLNK(mode) else "a file"
        raise OutputError(f"output path {path} is {what}, not a directory; choose a directory path for the output")
    if Path.cwd() == path or path in Path.cwd().parents:
        raise OutputError(f"output directory {path} contains the current directory; choose a path inside it or elsewhere")
    if mode is not None and not force:
        _check_replaceable(path)
    existing = path.parent if mode is not None else next(p for p in path.parents if p.exists())
    if not existing.is_dir():
        raise OutputError(f"cannot create output directory {path}: {existing} is a file")
    writable = existing
    if not os.access(writable, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write output directory {path}: {writable} is not writable; choose another path")
    return path


def _check_replaceable(path: Path) -> None:
    try:
        entries = sorted(p.name for p in path.iterdir())
    except FileNotFoundError:  # another writer moved it aside meanwhile: nothing to protect
        return
    except OSError as err:
        raise OutputError(f"cannot read output directory {path}: {err.strerror}; choose another path") from None
    if entries and MARKER not in entries:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise OutputError(
            f"output directory {path} is not empty ({len(entries)} entries: {shown}) and was not written by "
            f"streamdsl (no {MARKER} marker); it is left untouched. Choose another path, or pass --force to "
            "replace it and everything it holds."
        )


@contextmanager
def atomic_output_dir(target: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Yield a fresh staging directory next to `target`; on success it replaces `target` whole.

    On an exception (or interrupt) the staging directory is removed and `target` is left as it was.
    """
    path = check_output_dir(target, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_dead_scratch(path)
    staging = _scratch(path, "staging")
    os.mkdir(staging)  # mode 0777 & ~umask, unlike tempfile.mkdtemp's 0700
    try:
        (staging / MARKER).write_text(json.dumps({"written_by": "streamdsl"}) + "\n")
        yield staging
        _swap_in(staging, path, force)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap_in(staging: Path, path: Path, force: bool) -> None:
    """Replace `path` by `staging` under an exclusive lock on the parent directory."""
    with _locked(path.parent):
        old = None
        if path.is_dir():
            if not force:
                _check_replaceable(path)  # another process may have put something there meanwhile
            old = _scratch(path, "old")
            os.rename(path, old)
        elif path.exists() or path.is_symlink():
            raise OutputError(f"output path {path} became a file while writing; the output is discarded")
        try:
            os.rename(staging, path)
        except BaseException:
            if old is not None:
                os.rename(old, path)
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _scratch(path: Path, kind: str) -> Path:
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _sweep_dead_scratch(path: Path) -> None:
    """Remove staging/replaced directories of `path` left by processes that no longer run."""
    for kind in _SCRATCH:
        for entry in path.parent.glob(f".{glob.escape(path.name)}{kind}*"):
            pid = entry.name[len(f".{path.name}{kind}"):].split("-")[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def atomic_output_file(target: str | os.PathLike[str]) -> Iterator[IO[str]]:
    """Yield a text file next to `target` that replaces it by rename only when the block succeeds,
    so a failure never truncates `target` (not even when it is also the input)."""
    path = Path(os.path.abspath(target))
    if path.is_dir():
        raise OutputError(f"output file {path} is a directory; choose a file path")
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: directory {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"cannot write {path}: permission denied; choose another path")
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with open(temp, "x") as stream:  # mode 0666 & ~umask
            yield stream
        if path.exists():
            shutil.copymode(path, temp)
        os.replace(temp, path)
    finally:
        with suppress(FileNotFoundError):
            os.unlink(temp)


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n")


def _jsonable(value: object) -> object:
    if hasattr(value, "tolist"):
        return value.tolist()  # numpy scalars and arrays
    if isinstance(value, set | tuple):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
