"""Progress lines for log files: a live progress bar shows nothing once output is redirected to a file, so
long loops (training, generation) also log one line every few seconds with done/total, elapsed time and ETA.

`PROGRESS_EVERY_S` is the process-wide cadence; `run.py` sets it from the config key `progress_every_s` so one
knob drives every loop without threading it through each call.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

PROGRESS_EVERY_S = 30.0


def set_progress_every(seconds: float) -> None:
    """Set the default cadence of progress lines (seconds; 0 logs every step, a negative value only the ends)."""
    global PROGRESS_EVERY_S
    PROGRESS_EVERY_S = float(seconds)


def format_duration(seconds: float) -> str:
    """`42s`, `3m05s`, `1h02m`; `?` when unknown (infinite or NaN)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Ticker:
    """Decides when a loop logs a progress line and words its common part.

    Args:
        total: units of work expected (steps, batches); `math.inf` or 0 when unknown (no ETA then).
        every_s: seconds between lines; None uses `PROGRESS_EVERY_S`. The first unit and the last one always
            log, so even a short loop shows that it started and how fast it went.
        start: units already done before this process started (a resumed training), excluded from the rate.
        clock: monotonic clock in seconds (injectable for tests).
    """

    def __init__(
        self,
        total: float,
        every_s: float | None = None,
        start: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.every_s = PROGRESS_EVERY_S if every_s is None else float(every_s)
        self.start = start
        self.clock = clock
        self.started_at = clock()
        self.last_at: float | None = None

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started_at

    def due(self, done: int) -> bool:
        """True when a line should be logged after `done` units (and records that it was)."""
        now = self.clock()
        first = self.last_at is None and done > self.start
        last = math.isfinite(self.total) and self.total > 0 and done >= self.total
        periodic = self.every_s >= 0 and self.last_at is not None and now - self.last_at >= self.every_s
        if first or last or periodic:
            self.last_at = now
            return True
        return False

    def status(self, done: int) -> str:
        """`12/100 (12%) | elapsed 1m05s | ETA 7m40s` (ETA from this process's own rate)."""
        elapsed = self.elapsed
        known = math.isfinite(self.total) and self.total > 0
        rate = (done - self.start) / elapsed if elapsed > 0 else math.nan
        remaining = (self.total - done) / rate if known and rate > 0 else math.nan
        head = f"{done}/{int(self.total)} ({done / self.total:.0%})" if known else f"{done}"
        return f"{head} | elapsed {format_duration(elapsed)} | ETA {format_duration(remaining)}"
