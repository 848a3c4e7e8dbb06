"""Writing files: whole or not at all, and only over what is ours.

Every file dissemination writes (approved campaigns, reports, outbox files, event calendars)
goes through `write_atomically`: the bytes go to a temporary file next to the target, are flushed
to disk, and only then renamed over it. It refuses to replace anything but a regular file of this
user (`report --out /dev/full` must not swap the device node for a file), and on any failure (a
full disk) the temporary file is removed. Temporary files carry a prefix and the writer's pid, so
the clean-up after a killed writer removes only such files, and only when their writer is gone.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Callable

TEMP_PREFIX = ".dissemination-tmp-"
_TEMP = re.compile(rf"^{re.escape(TEMP_PREFIX)}(\d+)-[A-Za-z0-9_]+$")


class WriteRefused(OSError):
    """The target exists and is not a regular file of ours."""


def check_target(path: Path) -> None:
    """Raise WriteRefused unless `path` is absent or a regular file (not a link) of this user."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(found.st_mode):
        raise WriteRefused(f"{path} is a symbolic link; not replacing it (remove it or choose another path)")
    if not stat.S_ISREG(found.st_mode):
        raise WriteRefused(f"{path} is not a regular file; not replacing it (choose a file path)")
    if found.st_uid != os.getuid():
        raise WriteRefused(f"{path} belongs to another user; not replacing it")


def write_atomically(path: Path, data: bytes | str, before_replace: Callable[[], None] | None = None,
                     mode: int | None = None) -> None:
    """Write `data` to `path` whole or not at all. `before_replace` runs once the data is on disk;
    if it raises, nothing is replaced. `mode`: the file's permissions (e.g. 0o600 for secrets);
    default: those it had, or the usual ones for a new file."""
    check_target(path)
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{os.getpid()}-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        # The file keeps its permissions; a new one gets the usual 0666 less the umask, not the
        # temporary file's 0600: a report is read by the group that shares its folder. A secret
        # is never readable by others, not even for a moment: mkstemp made the file 0600.
        os.chmod(tmp, mode)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:  # say which file: "File too large" alone does not help anyone
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0o022)  # reading the umask means setting it; put it back at once
    os.umask(current)
    return current


def remove_orphans(folder: Path) -> None:
    """Temporary files of writers that died before renaming (e.g. killed mid-write): only files
    `write_atomically` made, regular and ours, whose process is gone."""
    for tmp in folder.glob(f"{TEMP_PREFIX}*"):
        match = _TEMP.match(tmp.name)
        if not match:
            continue
        try:
            found = os.lstat(tmp)
            if not stat.S_ISREG(found.st_mode) or found.st_uid != os.getuid():
                continue
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except (PermissionError, FileNotFoundError, OverflowError):
            pass  # alive (someone else's), or already gone
