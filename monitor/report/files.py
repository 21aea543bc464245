"""Writing report files: all or nothing, atomically, and checking a directory first.

Kept apart from rendering (Jinja2, matplotlib) so `monitor report` can check that
its output directory is writable in a fraction of a second, before the build.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from monitor.errors import MonitorError


class ReportWriteError(MonitorError):
    """The report could not be written (directory unwritable, disk full); nothing was left half-written."""


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so readers see the old file or the new one, never a part."""
    write_all_atomic({path: text})


def write_all_atomic(files: dict[Path, str]) -> None:
    """Write every file or none: readers see the old files or all the new ones, never a part.

    Each text goes to a temp file in its target's directory (same filesystem, so the
    rename is atomic) and is fsynced; only when every one is staged are they renamed
    into place, so a full disk or a permission error part-way leaves nothing behind
    (directories this call created are removed again). Then the directories are
    fsynced so the renames survive a crash.
    """
    staged: list[tuple[str, Path]] = []
    created: list[Path] = []
    try:
        for path, text in files.items():
            created += _make_parents(path.parent)
            fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            staged.append((temp_name, path))
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temp_name, 0o644)
        for temp_name, path in staged:
            os.replace(temp_name, path)
    except BaseException:
        for temp_name, _ in staged:
            Path(temp_name).unlink(missing_ok=True)
        for directory in reversed(created):
            try:
                directory.rmdir()
            except OSError:
                pass
        raise
    for directory in dict.fromkeys(path.parent for path in files):
        _fsync_directory(directory)


def check_writable(out_dir: Path) -> None:
    """Raise ReportWriteError unless files can be created in `out_dir`; leaves nothing behind.

    Checked before a report is built, so a typo in --out costs a second, not a build.
    """
    created: list[Path] = []
    try:
        created = _make_parents(Path(out_dir))
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        raise ReportWriteError(f"cannot write the report to {exc.filename or out_dir}: "
                               f"{exc.strerror or exc}") from None
    finally:
        for directory in reversed(created):
            try:
                directory.rmdir()
            except OSError:
                pass


def _make_parents(directory: Path) -> list[Path]:
    """Create `directory` and missing parents; return the ones created, outermost first."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        if directory.parent == directory:
            break
        directory = directory.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
    return list(reversed(missing))


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # not supported on this platform
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
