"""Step-by-step progress for long commands (``dev up``, ``demo``), on a terminal or in a log.

Why one place: ``autopilot dev`` and ``autopilot demo`` both bring a cluster up and show each
step as it runs; they drew the same spinners and wrote the same timed lines with two copies.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

#: ``(step, detail)``: start the next step; show the latest tool output beside the current one.
StepCallbacks = tuple[Callable[[str], None], Callable[[str], None]]

#: Characters of a detail shown beside a spinner (a Go build's line can be very long).
DETAIL_WIDTH = 80


@contextmanager
def step_display(console: Console, *, indent: str = "") -> Iterator[StepCallbacks]:
    """Yield ``(step, detail)`` callbacks that drive a progress display on ``console``.

    On a terminal each step gets a spinner and its elapsed time, and ``detail`` shows the
    latest tool output next to it. Elsewhere (a pipe, a CI log) each step is one plain line
    stamped with the seconds since the start, and details are dropped.
    """
    if not console.is_terminal:
        started = time.monotonic()

        def plain(line: str) -> None:
            # soft_wrap: a log line stays one line, whatever width Rich guesses for a pipe
            console.print(
                f"{indent}[{time.monotonic() - started:6.1f}s] {line}",
                highlight=False,
                soft_wrap=True,
            )

        yield plain, lambda _line: None
        return
    with Progress(
        SpinnerColumn(finished_text="[green]✓[/]"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        TextColumn("[dim]{task.fields[detail]}"),
        console=console,
        transient=False,
    ) as progress:
        current: list[TaskID] = []

        def step(line: str) -> None:
            if current:
                progress.update(current[-1], completed=1, detail="")
            current.append(progress.add_task(line, total=1, detail=""))

        def detail(line: str) -> None:
            if current:
                progress.update(current[-1], detail=line[:DETAIL_WIDTH])

        try:
            yield step, detail
        finally:
            if current:
                progress.update(current[-1], completed=1, detail="")
