"""Progress of a sweep -> runs -> generations, for the CLI (implements ``api.Progress``).

On a terminal: a rich display with an overall bar (replicate-generations done, elapsed, ETA) and one
line per shard in flight (its run name, grid values first when it is long, and its generation). When
stderr is not a terminal (CI, SLURM logs): one plain line at most every ``every`` seconds, and a last
one at the end. Nothing appears for studies that finish within a second.
"""
from __future__ import annotations

import time
from typing import Any


def fit_name(name: str, width: int = 60) -> str:
    """``name`` in at most ``width`` characters, keeping the grid values (``[...]``) rather than the prefix."""
    if len(name) <= width:
        return name
    if "[" in name:
        head, _, inner = name.partition("[")
        inner = "[" + inner
        if len(inner) + 2 <= width:
            return head[: width - len(inner) - 1] + "…" + inner
        return "…" + inner[-(width - 1):]
    return name[: width - 1] + "…"


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


class SweepProgress:
    """Progress sink for ``autophagy.run`` (``start`` / ``generation`` / ``finished`` / ``close``)."""

    def __init__(self, console: Any, every: float = 10.0, delay: float = 1.0, on_start=None):
        self.console, self.every, self.delay = console, every, delay
        self.on_start = on_start  # called once when the shards start (the CLI loads its figure code then)
        self.t0 = time.perf_counter()
        self.shards: dict = {}
        self.done_units = 0.0
        self.total_units = 0.0
        self.gen: dict = {}
        self.finished_keys: set = set()
        self.runs_total = 0
        self.bar = None
        self.main_task = None
        self.tasks: dict = {}
        self.last_line = 0.0
        self.tty = bool(getattr(console, "is_terminal", False))

    # ------------------------------------------------------------------ the sink
    def start(self, shards) -> None:
        self.t0 = time.perf_counter()
        self.shards = {s.key: s for s in shards}
        self.total_units = float(sum(self._units(s) for s in shards))
        self.runs_total = len({s.spec.run_id for s in shards})
        if self.on_start is not None:
            hook, self.on_start = self.on_start, None
            hook()

    def generation(self, key, g: int) -> None:
        s = self.shards.get(key)
        if s is None:
            return
        before = self.gen.get(key, -1)
        self.gen[key] = g
        self.done_units += (g - before) * (s.stop - s.start)
        self._show(key)

    def finished(self, key) -> None:
        s = self.shards.get(key)
        if s is None:
            return
        G = s.spec.config.generations
        self.done_units += (G - self.gen.get(key, -1)) * (s.stop - s.start)
        self.gen[key] = G
        self.finished_keys.add(key)
        self._show(key, finished=True)

    def close(self) -> None:
        """Stop the display (a last plain line when not on a terminal); safe to call twice."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        elif not self.tty and self.last_line and self.shards:
            self._line(final=True)
        self.shards, self.last_line = {}, 0.0

    # ------------------------------------------------------------------ display
    @staticmethod
    def _units(s) -> int:
        return (s.spec.config.generations + 1) * (s.stop - s.start)

    def _runs_done(self) -> int:
        remaining = {s.spec.run_id for k, s in self.shards.items() if k not in self.finished_keys}
        return self.runs_total - len(remaining)

    def _show(self, key, finished: bool = False) -> None:
        elapsed = time.perf_counter() - self.t0
        if elapsed < self.delay and self.bar is None and not self.last_line:
            return
        if not self.tty:
            if time.perf_counter() - self.last_line >= self.every:
                self._line()
            return
        if self.bar is None:
            self._start_bar()
        self.bar.update(self.main_task, completed=self.done_units,
                        description=f"sweep: {self._runs_done()}/{self.runs_total} runs")
        s = self.shards[key]
        if finished:
            task = self.tasks.pop(key, None)
            if task is not None:
                self.bar.remove_task(task)
            return
        label = fit_name(s.spec.name) + ("" if s.whole else f" r{s.start}-{s.stop - 1}")
        if key not in self.tasks:
            self.tasks[key] = self.bar.add_task(label, total=s.spec.config.generations + 1)
        self.bar.update(self.tasks[key], completed=self.gen.get(key, -1) + 1)

    def _start_bar(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TimeRemainingColumn(), console=self.console, transient=True)
        self.bar.start()
        self.main_task = self.bar.add_task("sweep", total=self.total_units, completed=self.done_units)

    def _line(self, final: bool = False) -> None:
        self.last_line = time.perf_counter()
        elapsed = self.last_line - self.t0
        frac = self.done_units / self.total_units if self.total_units else 1.0
        eta = (elapsed / frac - elapsed) if 0 < frac < 1 else 0.0
        active = [fit_name(self.shards[k].spec.name, 40) + f" gen {g}/{self.shards[k].spec.config.generations}"
                  for k, g in self.gen.items() if k not in self.finished_keys]
        msg = (f"[{_clock(elapsed)}] {100 * frac:.0f}% ({self._runs_done()}/{self.runs_total} runs)"
               + ("" if final else f", eta {_clock(eta)}") + (f"; running: {', '.join(active[:4])}" if active and not final else ""))
        self.console.print(msg, highlight=False, markup=False, soft_wrap=True)
