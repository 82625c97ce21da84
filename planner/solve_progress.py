"""The progress bar of `planner plan`: the solve's clock against its time limit and the
solver's phase (SolveSettings.on_progress), on stderr, only on a terminal (transient: gone
once the solve ends, so the plan's table and JSON output stay as they are)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


@contextmanager
def solve_progress(console: Console, time_limit_s: float) -> Iterator[Callable[[str], None] | None]:
    """Yields the callback for SolveSettings.on_progress, or None where `console` is not a
    terminal (nothing would show)."""
    if not console.is_terminal:
        yield None
        return
    start = time.perf_counter()
    with Progress(TextColumn("planning"), BarColumn(), TimeElapsedColumn(),
                  TextColumn(f"of {time_limit_s:g} s limit"), TextColumn("{task.fields[phase]}"),
                  console=console, transient=True) as bar:
        task = bar.add_task("plan", total=time_limit_s, phase="")

        def on_progress(phase: str) -> None:
            bar.update(task, completed=min(time.perf_counter() - start, time_limit_s), phase=phase)

        yield on_progress
