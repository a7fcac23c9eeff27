"""Progress bars for every long job (rich): count, rate, elapsed and ETA, on stderr so stdout stays clean."""
from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from nst_video.report import console as stderr_console


class RateColumn(ProgressColumn):
    """Items per second, e.g. '23.4 fps' for frames or '1.8 it/s' for training steps."""

    def __init__(self, unit: str = "it/s"):
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("--" if speed is None else f"{speed:.1f} {self.unit}", style="progress.data.speed")


def progress_bar(unit: str = "it/s", transient: bool = False) -> Progress:
    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    RateColumn(unit), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    TextColumn("{task.fields[status]}"),
                    console=stderr_console, transient=transient)
