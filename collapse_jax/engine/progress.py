"""A small progress line (rate, ETA) for long runs, written to stderr."""

from __future__ import annotations

import sys
import time


def _fmt_time(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """``enabled=None`` shows the line only once a run has taken ``delay`` seconds;
    True always; False never. On a terminal the line is rewritten in place,
    elsewhere at most one line every ``interval`` seconds."""

    def __init__(
        self,
        total: int,
        enabled: bool | None = None,
        unit: str = "items",
        delay: float = 3.0,
        interval: float = 10.0,
        stream=None,
        prefix: str = "collapse_jax",
    ):
        self.total, self.enabled, self.unit = max(int(total), 1), enabled, unit
        self.prefix = prefix
        self.delay, self.interval = delay, interval
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.start = time.perf_counter()
        self.last_print = -1e9
        self.shown = False
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, amount: int) -> None:
        self.done += int(amount)
        if self.enabled is False:
            return
        now = time.perf_counter()
        elapsed = now - self.start
        if self.enabled is None and elapsed < self.delay:
            return
        if not self.tty and now - self.last_print < self.interval and self.done < self.total:
            return
        self.last_print = now
        self._write(elapsed)

    def _write(self, elapsed: float) -> None:
        frac = min(self.done / self.total, 1.0)
        rate = self.done / elapsed if elapsed > 0 else float("nan")
        eta = (self.total - self.done) / rate if rate and rate > 0 else float("nan")
        eta_s = _fmt_time(eta) if eta == eta else "?"
        line = (
            f"{self.prefix}: {100 * frac:5.1f}% | {self.done:.3g}/{self.total:.3g} {self.unit} | "
            f"{rate:.3g}/s | elapsed {_fmt_time(elapsed)} | ETA {eta_s}"
        )
        end = "\r" if self.tty and self.done < self.total else "\n"
        self.stream.write(("\r" if self.tty else "") + line + end)
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown and self.tty:
            self._write(time.perf_counter() - self.start)
