"""Atomic file writes: a reader sees the old file or the whole new one, never half of it.

How (Linux first, portable fallback):
1. The text goes into an *anonymous* file in the destination folder (O_TMPFILE): if the
   process is killed while writing, there is no name to leave behind.
2. After fsync, the file gets a unique temporary name (linkat via /proc/self/fd) and is
   renamed over the destination (os.replace: atomic within one file system); then the
   folder is fsynced so the rename survives a power cut.
Where O_TMPFILE is unsupported, a named temporary file (`.NAME.PID.RANDOM.tmp`) is used,
removed on any exception; one left by a writer killed with SIGKILL is removed by the next
write to the same path once that PID is gone.

Two writers of the same path each rename a complete file, so the result is one of them
whole, never an interleaving.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

_O_TMPFILE = getattr(os, "O_TMPFILE", 0)


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove temporary files of `path` whose writer process no longer exists."""
    removed = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        parts = tmp.name[len(path.name) + 2 :].split(".")
        if len(parts) == 3 and parts[0].isdigit() and not _pid_alive(int(parts[0])):
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _open_anonymous(folder: Path) -> int | None:
    if not _O_TMPFILE or not Path("/proc/self/fd").is_dir():
        return None
    try:
        return os.open(folder, _O_TMPFILE | os.O_WRONLY, 0o666)
    except OSError:  # file system without O_TMPFILE support
        return None


def _name_anonymous(fd: int, folder: Path, name: str) -> None:
    """linkat(..., AT_SYMLINK_FOLLOW): give the anonymous file a name in `folder`.
    (os.link uses plain link(2), which does not follow /proc/self/fd links, unless a
    dir_fd is given.)"""
    folder_fd = os.open(folder, os.O_RDONLY)
    try:
        os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=folder_fd, follow_symlinks=True)
    finally:
        os.close(folder_fd)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise IsADirectoryError(21, "is a folder, not a file", str(path))
    remove_stale_temps(path)
    tmp = _temp_name(path)
    fd = _open_anonymous(folder)
    try:
        if fd is not None:
            _write_all(fd, data)
            os.fsync(fd)
            _name_anonymous(fd, folder, tmp.name)
        else:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            _write_all(fd, data)
            os.fsync(fd)
        os.close(fd)
        fd = None
        os.replace(tmp, path)
    except BaseException:
        if fd is not None:
            os.close(fd)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_folder(folder)


def write_text_atomic(path: Path, text: str) -> None:
    """Write UTF-8 text to `path` atomically (see the module's docstring)."""
    write_bytes_atomic(Path(path), text.encode("utf-8"))
