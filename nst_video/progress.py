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
from rich.table import Column
from rich.text import Text

from nst_video.report import console as stderr_console


class RateColumn(ProgressColumn):
    """Items per second, e.g. '23.4 fps' for frames or '1.8 it/s' for training steps."""

    def __init__(self, unit: str = "it/s", table_column: Column | None = None):
        super().__init__(table_column)
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("--" if speed is None else f"{speed:.1f} {self.unit}", style="progress.data.speed")


class OneLineTextColumn(TextColumn):
    """A text column cut with an ellipsis rather than wrapped, so the bar stays one line."""

    def render(self, task) -> Text:
        text = super().render(task)
        text.no_wrap, text.overflow = True, "ellipsis"
        return text


class _Progress(Progress):
    def stop(self) -> None:
        if self.disable or self.console.is_interactive or (self.tasks and not self.live.transient):
            return super().stop()
        # On a file or a pipe rich ends the bar's last line after stopping; a bar that shows nothing there (a
        # transient one, or one whose job failed before its first task) would leave a blank line, right before
        # the error line.
        self.live.transient = True
        self.live.stop()


def progress_bar(unit: str = "it/s", transient: bool = False) -> Progress:
    """Count, rate, elapsed and ETA never shrink (no_wrap): in a narrow terminal the bar, the description and
    the status give way first, the text ones cut with an ellipsis."""
    def whole() -> Column:
        return Column(no_wrap=True)

    def give_way() -> Column:
        return Column(no_wrap=False, overflow="ellipsis")

    # descriptions and statuses (file and style names) as they are: no markup, no emoji codes
    return _Progress(OneLineTextColumn("{task.description}", style="progress.description", markup=False,
                                       table_column=give_way()),
                    BarColumn(bar_width=None, table_column=Column(ratio=1)),
                    MofNCompleteColumn(table_column=whole()), RateColumn(unit, table_column=whole()),
                    TimeElapsedColumn(table_column=whole()), TextColumn("ETA", table_column=whole()),
                    TimeRemainingColumn(table_column=whole()),
                    OneLineTextColumn("{task.fields[status]}", markup=False, table_column=give_way()),
                    console=stderr_console, transient=transient)


def fields_lines(fields: list[str], width: int, indent: int = 2) -> list[str]:
    """`fields` joined by two spaces into lines of at most `width` characters, broken only between fields
    (a terminal's own wrapping would cut a number in two); lines after the first indented."""
    lines, line = [], ""
    for field in fields:
        candidate = f"{line}  {field}" if line else field
        if line and len(candidate) > width:
            lines.append(line)
            candidate = " " * indent + field
        line = candidate
    return lines + [line] if line else lines
