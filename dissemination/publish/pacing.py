"""Pacing shared by everything that talks to a platform under a rate: newsletter sends and
engagement reads."""

from __future__ import annotations

import threading
import time


class RateLimit:
    """Spaces starts evenly across threads: never more than `per_minute` in any minute (no limit
    when `per_minute` is None or 0)."""

    def __init__(self, per_minute: int | None) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self.next = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next)
            self.next = start + self.interval
        if start > now:
            time.sleep(start - now)
