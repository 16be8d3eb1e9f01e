"""Progress of long runs: a small line (rate, ETA) on stderr, a tqdm bar (a Jupyter
widget in notebooks), or the user's own callable (:func:`make_progress`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


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
        self.updates = 0
        self.ref: tuple[float, int] | None = None  # (time, done) once compilation is behind

    def _mark(self, now: float) -> None:
        """The rate is measured from the second update on: the first chunk's first two
        updates include compiling generation 0 and the block program, which would
        otherwise inflate the ETA (several minutes of compilation read as a slow run)."""
        self.updates += 1
        if self.updates == 2:
            self.ref = (now, self.done)

    def rate(self, now: float) -> float:
        """Items per second since compilation (NaN before it is known)."""
        if self.ref is None or now <= self.ref[0] or self.done <= self.ref[1]:
            return float("nan")
        return (self.done - self.ref[1]) / (now - self.ref[0])

    def update(self, amount: int) -> None:
        self.done += int(amount)
        now = time.perf_counter()
        self._mark(now)
        if self.enabled is False:
            return
        elapsed = now - self.start
        if self.enabled is None and elapsed < self.delay:
            return
        if not self.tty and now - self.last_print < self.interval and self.done < self.total:
            return
        self.last_print = now
        self._write(elapsed)

    def _write(self, elapsed: float) -> None:
        frac = min(self.done / self.total, 1.0)
        rate = self.rate(time.perf_counter())
        if rate != rate and self.done >= self.total:
            rate = self.done / elapsed if elapsed > 0 else float("nan")
        eta = (self.total - self.done) / rate if rate and rate > 0 else float("nan")
        eta_s = _fmt_time(eta) if eta == eta else ("? (compiling)" if self.ref is None else "?")
        rate_s = f"{rate:.3g}/s" if rate == rate else "?/s"
        line = (
            f"{self.prefix}: {100 * frac:5.1f}% | {self.done:.3g}/{self.total:.3g} {self.unit} | "
            f"{rate_s} | elapsed {_fmt_time(elapsed)} | ETA {eta_s}"
        )
        end = "\r" if self.tty and self.done < self.total else "\n"
        self.stream.write(("\r" if self.tty else "") + line + end)
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown and self.tty:
            self._write(time.perf_counter() - self.start)


class _Bar:
    """A tqdm-like class (``tqdm.tqdm``, ``tqdm.auto.tqdm``, ``tqdm.notebook.tqdm``, or
    anything with the same constructor, ``update`` and ``close``) driven as ``Progress``."""

    def __init__(self, cls, total: int, unit: str, prefix: str):
        self.bar = cls(total=max(int(total), 1), unit=unit, desc=prefix, unit_scale=True)
        self.total, self.done = max(int(total), 1), 0

    def update(self, amount: int) -> None:
        self.done += int(amount)
        self.bar.update(int(amount))

    def close(self) -> None:
        self.bar.close()


class _Callback:
    """A plain callable ``fn(done, total)`` called at every update."""

    def __init__(self, fn: Callable[[int, int], object], total: int):
        self.fn, self.total, self.done = fn, max(int(total), 1), 0

    def update(self, amount: int) -> None:
        self.done += int(amount)
        self.fn(self.done, self.total)

    def close(self) -> None:
        pass


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (where a line every few seconds would
    clutter the cell: a widget is shown instead)."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"


def check_progress(progress) -> None:
    """``progress`` is None, a bool, a tqdm-like class or a callable ``(done, total)``."""
    if progress is None or isinstance(progress, bool) or callable(progress):
        return
    raise TypeError(
        "simulate: progress must be None (show it for long runs), True, False, a tqdm-like class "
        f"(e.g. tqdm.auto.tqdm) or a callable fn(done, total), got {progress!r}"
    )


def make_progress(progress, total: int, unit: str, prefix: str):
    """The run's progress reporter: ``Progress`` for None/True/False (a tqdm widget
    instead in Jupyter when tqdm is installed), ``_Bar`` for a class, ``_Callback``
    for any other callable."""
    if isinstance(progress, type):
        return _Bar(progress, total, unit, prefix)
    if callable(progress):
        return _Callback(progress, total)
    if progress is not False and in_notebook():
        try:
            from tqdm.auto import tqdm
        except ImportError:
            pass
        else:
            return _Bar(tqdm, total, unit, prefix)
    return Progress(total=total, enabled=progress, unit=unit, prefix=prefix)
