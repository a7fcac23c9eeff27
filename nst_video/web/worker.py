"""DeviceWorker: the one thread that runs the server's short work on the device - a still image, a live
frame, a thumbnail - one task at a time, in order, from a bounded queue.

One thread owns the Stylizer, so no two requests ever change its style or strength under each other, and a
flood of requests cannot queue more than `max_pending` decoded images: the next one is refused at once
(Busy -> 503 with Retry-After) instead of eating memory. The server's own background work (thumbnails, a
few and bounded) waits in a second lane that runs only when no request waits, and never takes a request's
place. Video jobs have their own queue and Stylizer (jobs.py): a long video never holds up an image."""
from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Callable, TypeVar

from nst_video.stylizer import Stylizer

T = TypeVar("T")
Task = Callable[[Stylizer], T]


class Busy(Exception):
    """The queue is full; `retry_after` seconds is a fair guess of when there is room."""

    def __init__(self, retry_after: int):
        super().__init__(f"busy, retry after {retry_after} s")
        self.retry_after = retry_after


class DeviceWorker:
    def __init__(self, stylizer: Stylizer, max_pending: int = 4, name: str = "nst-serve-device"):
        self.stylizer = stylizer
        self.max_pending = max_pending
        self._requests: deque[tuple[Task, Future]] = deque()    # bounded by max_pending
        self._background: deque[tuple[Task, Future]] = deque()  # the server's own, bounded by what it asks
        self._cond = threading.Condition()
        self._durations: deque[float] = deque(maxlen=20)  # seconds of recent tasks, for Retry-After
        self._closing = False
        self.running = 0     # 0 or 1: a task is on the device now
        self.completed = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Requests waiting (not counting the task running)."""
        return len(self._requests)

    def check_room(self) -> None:
        """Busy now if a request would be refused (so a long upload need not be read first)."""
        if self._closing or self._full():
            raise Busy(self.retry_after())

    def submit(self, task: Task, background: bool = False) -> Future:
        """Queue `task(stylizer)`; its Future gets the result. A full queue raises Busy. `background` tasks (the
        server's own, bounded work such as thumbnails) are never refused and run when no request waits."""
        future: Future = Future()
        with self._cond:
            if self._closing:
                raise Busy(5)
            if background:
                self._background.append((task, future))
            else:
                if self._full():
                    raise Busy(self.retry_after())
                self._requests.append((task, future))
            self._cond.notify()
        return future

    async def run(self, task: Task) -> T:
        """Run `task` on the device and wait for it without blocking the event loop (Busy if full)."""
        return await asyncio.wrap_future(self.submit(task))

    def _full(self) -> bool:
        # One running plus max_pending waiting, counted together: a request the worker has not yet taken off the
        # queue holds the running place, so a burst gets the same room however fast the worker wakes.
        return self.pending + self.running >= self.max_pending + 1

    def retry_after(self) -> int:
        """Seconds until the queue has room, by the recent tasks' mean time: 1 to 60."""
        mean = sum(self._durations) / len(self._durations) if self._durations else 1.0
        return max(1, min(60, math.ceil(mean * (self.pending + self.running))))

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._requests or self._background or self._closing):
                    self._cond.wait()
                if self._closing:
                    return
                task, future = (self._requests or self._background).popleft()
                if not future.set_running_or_notify_cancel():  # its request went away while it waited
                    continue
                self.running = 1
            started = time.perf_counter()
            try:
                future.set_result(task(self.stylizer))
            except BaseException as e:  # handed to the request, which answers with it
                future.set_exception(e)
            finally:
                self._durations.append(time.perf_counter() - started)
                self.running = 0
                self.completed += 1

    def close(self, timeout: float = 5.0) -> None:
        """Refuse new tasks, drop the waiting ones (their requests see CancelledError) and let the running one
        finish, waiting at most `timeout` seconds."""
        with self._cond:
            self._closing = True
            for _, future in (*self._requests, *self._background):
                future.cancel()
            self._requests.clear()
            self._background.clear()
            self._cond.notify_all()
        self._thread.join(timeout)
