"""The one containment rule for every path the content names.

Knowledge files, campaigns, stakeholder maps, templates, images, an outbox channel's `path:`,
event calendars and reports: each must resolve inside the content root, symlinks followed. A
content file that is a link to `/etc/passwd`, an image named `../../secret.png` or an outbox
`path: /tmp/elsewhere` is an error with the file and line that names it. `check` applies the rule
when it loads the content, and every step that reads or writes such a path applies it again when
it does so (the files may have changed since; an upload never reads outside the root).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path, PurePath

from dissemination.problems import printable


class OutsideRoot(ValueError):
    """A path the content names that may not be used; the message says why, for `path:line:`."""


def inside(root: Path, relative: str | PurePath, what: str = "path") -> Path:
    """`root / relative`, resolved, when it stays inside `root`; else OutsideRoot saying why."""
    text = str(relative)
    if "\x00" in text:
        raise OutsideRoot(f"{what} '{printable(text)}' contains a NUL character")
    if any(len(part.encode("utf-8", "surrogateescape")) > 255 for part in PurePath(text).parts):
        raise OutsideRoot(f"{what} '{printable(text)[:60]}...' has a name longer than the file system allows "
                          "(255 bytes)")
    if PurePath(text).is_absolute():
        raise OutsideRoot(f"{what} '{printable(text)}' is outside the content root")
    base = root.resolve()
    try:
        resolved = (base / text).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long for the system
        code = getattr(exc, "errno", None)
        reason = "is a symbolic link that loops" if code == errno.ELOOP or isinstance(exc, RuntimeError) else \
            f"cannot be used ({os.strerror(code) if code else exc})"
        raise OutsideRoot(f"{what} '{printable(text)}' {reason}") from None
    if not resolved.is_relative_to(base):
        linked = " through a symbolic link" if (base / text).absolute().is_relative_to(base) else ""
        raise OutsideRoot(f"{what} '{printable(text)}' is outside the content root{linked}")
    return resolved


def is_inside(root: Path, file: Path) -> bool:
    """Whether an existing file found under `root` (e.g. by a directory listing) resolves inside it."""
    try:
        return file.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        return False
