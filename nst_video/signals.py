"""Stop signals: SIGTERM (kill, timeout, systemd, container stops) and SIGHUP (the terminal went away) end a
long job exactly as Ctrl-C does, so every job has one way to stop cleanly and one exit code convention.

Ways to be stopped:
  - `raise_on_stop_signals()`: the signal raises `Interrupted` (a KeyboardInterrupt) in the main thread, like
    Ctrl-C does by default; jobs that already finish cleanly on KeyboardInterrupt (video, webcam) need nothing
    else. The CLI installs it around every command.
  - `StopFlag`: the signal only sets a flag that the job polls at a safe point (training finishes its step and
    saves a checkpoint); a second signal raises `Interrupted` at once.
  - `handle_stop_signals(handler)`: every signal calls the handler (the web server's graceful shutdown).

`exit_code()` is the conventional status after a stop: 128 + the signal's number (130 for Ctrl-C, 143 for
SIGTERM, 129 for SIGHUP)."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable, Iterator

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))

_received: int | None = None  # the last stop signal, for exit_code()


class Interrupted(KeyboardInterrupt):
    """A stop signal, raised like Ctrl-C; `signum` says which."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def note_signal(signum: int) -> None:
    global _received
    _received = signum


def exit_code(error: BaseException | None = None) -> int:
    """128 + the stop signal's number: from `error` if it is an Interrupted, else the last signal received,
    else SIGINT's (a plain KeyboardInterrupt is Ctrl-C)."""
    signum = getattr(error, "signum", None) or _received or signal.SIGINT
    return 128 + int(signum)


def signal_name(signum: int | None = None) -> str:
    signum = signum or _received or signal.SIGINT
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


@contextlib.contextmanager
def _handlers(handler: Callable) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    # A signal the parent set to be ignored stays ignored: `nohup` (SIGHUP) and background jobs of a
    # non-interactive shell (SIGINT) ask for exactly that.
    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS if signal.getsignal(s) != signal.SIG_IGN}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _raise(signum, frame) -> None:
    note_signal(signum)
    raise Interrupted(signum)


def raise_on_stop_signals():
    """Within this context SIGINT, SIGTERM and SIGHUP raise `Interrupted` in the main thread."""
    return _handlers(_raise)


def handle_stop_signals(handler: Callable[[int], None]):
    """Within this context every stop signal calls `handler(signum)` in the main thread, and nothing else
    happens: for a job with its own way of stopping (the web server shuts down; a second signal cuts the
    wait short)."""
    def _call(signum, frame) -> None:
        note_signal(signum)
        handler(signum)
    return _handlers(_call)


class StopFlag:
    """Within this context the first stop signal sets `requested` (and calls `on_request`, e.g. to say that the
    job will stop after its current step); a second one raises `Interrupted` at once."""

    def __init__(self, on_request: Callable[[int], None] | None = None):
        self.requested: int | None = None  # the signal's number once one came
        self.on_request = on_request
        self._context = None

    def __bool__(self) -> bool:
        return self.requested is not None

    def _handle(self, signum, frame) -> None:
        note_signal(signum)
        if self.requested is not None:
            raise Interrupted(signum)
        self.requested = signum
        if self.on_request:
            self.on_request(signum)

    def __enter__(self) -> "StopFlag":
        self._context = _handlers(self._handle)
        self._context.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._context.__exit__(*exc)
