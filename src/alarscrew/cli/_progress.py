"""One rich progress bar for CLI commands made of named steps."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def step_progress(enabled: bool, total: int, *, label: str = "working"
                  ) -> Iterator[Callable[[str], None]]:
    """Yield ``step(description)``: each call advances a bar on stderr by one step.

    With ``enabled`` false (``--quiet``/``--json``) the yielded function does nothing.
    """
    if not enabled:
        yield lambda _msg: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]{task.description:<34}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total)
        started = [False]

        def step(msg: str) -> None:
            if started[0]:
                bar.advance(task)
            started[0] = True
            bar.update(task, description=msg)

        yield step
        bar.update(task, completed=total, description="done")
