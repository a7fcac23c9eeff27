"""The progress display in an 80-column terminal: the figures a user reads (count, rate, ETA, loss) stay whole."""
from __future__ import annotations

import re
import time

from rich.console import Console
from rich.progress import ProgressSample

import nst_video.progress as progress_module
from nst_video.progress import fields_lines


def render_at_80(monkeypatch, description: str, status: str) -> list[str]:
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115 (closed with the test)
    monkeypatch.setattr(progress_module, "stderr_console", console)
    bar = progress_module.progress_bar("it/s")
    task_id = bar.add_task(description, total=800, status="")
    task = bar.tasks[0]
    now = time.monotonic()
    task.start_time = now - 240
    # the rate comes from the last 30 s of samples: 10 steps in 20 s, 0.5 it/s, 680 steps (22'40") to go
    task._progress.extend([ProgressSample(now - 20, 0), ProgressSample(now, 10)])
    task.completed = 120  # set directly: update() would add a sample of its own
    bar.update(task_id, status=status)
    console.print(bar.make_tasks_table(bar.tasks))
    console.file.close()
    return [line for line in console.export_text().splitlines() if line.strip()]


def test_training_bar_fits_80_columns_with_every_figure_whole(monkeypatch):
    lines = render_at_80(monkeypatch, "training composition_vii", "loss 6.123")
    assert len(lines) == 1, lines
    line = lines[0]
    assert "120/800" in line and "0.5 it/s" in line and "loss 6.123" in line, line
    assert re.search(r"ETA 0:22:\d\d", line), line
    assert len(line.rstrip()) <= 80


def test_a_long_status_gives_way_to_the_figures(monkeypatch):
    lines = render_at_80(monkeypatch, "stylizing", "1920x1080 -> a_rather_long_output_file_name_for_a_clip.mp4")
    assert len(lines) == 1, lines
    assert "120/800" in lines[0] and "0.5 it/s" in lines[0] and re.search(r"ETA 0:22:\d\d", lines[0])


def test_log_line_breaks_between_fields_never_inside_a_number():
    fields = ["step 1200/40000", "loss 123456.7", "0.51 it/s", "content 12.34", "style 98765.43", "tv 0.01234",
              "motion 1.234", "flow 0.5678", "stability 0.0123"]
    lines = fields_lines(fields, 80)
    assert len(lines) > 1 and all(len(line) <= 80 for line in lines)
    assert lines[0].startswith("step 1200/40000  loss 123456.7  0.51 it/s")
    assert [f.strip() for line in lines for f in line.split("  ") if f.strip()] == fields
