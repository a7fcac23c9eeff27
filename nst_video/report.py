"""The one place that writes messages for the user: everything goes to stderr (stdout stays clean for data)
through one rich console, which progress bars share, so a message never tears a live bar apart.

Jobs return results and call these for events; they never print by themselves.
  say(text)            a plain line ("wrote out.mp4: ...")
  warn(text)           "nst-video: warning: ..."
  error(text)          "nst-video: error: ..." (the CLI's one line for bad input)
  event(topic, text)   "topic: text", e.g. the webcam's "webcam: style mosaic (2/6)"
"""
from __future__ import annotations

from rich.console import Console

# emoji=False: rich would turn ":fire:" in a file's name into an emoji; every message is printed as it is
console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def say(text: str) -> None:
    console.print(text, markup=False)


def warn(text: str) -> None:
    console.print(f"nst-video: warning: {text}", markup=False)


def error(text: str) -> None:
    console.print(f"nst-video: error: {text}", markup=False)


def event(topic: str, text: str) -> None:
    console.print(f"{topic}: {text}", markup=False)
