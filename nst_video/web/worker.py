"""DeviceWorker: the one thread that runs the server's short work on the device - a still image, a live
frame, a thumbnail - one task at a time, in order, from a bounded queue.

One thread owns the Stylizer, so no two requests ever change its style or strength under each other, and a
flood of requests cannot queue more than `max_pending` decoded images: the next one is refused at once
(Busy -> 503 with Retry-After) instead of eating memory. Video jobs have their own queue and Stylizer
(jobs.py): a long video never holds up an image."""
from __future__ import annotations

import asyncio
import math
import queue
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
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._durations: deque[float] = deque(maxlen=20)  # seconds of recent tasks, for Retry-After
        self._closing = threading.Event()
        self.running = 0     # 0 or 1: a task is on the device now
        self.completed = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Tasks waiting (not counting the one running)."""
        return self._queue.qsize()

    def submit(self, task: Task, wait: bool = False) -> Future:
        """Queue `task(stylizer)`; its Future gets the result. A full queue raises Busy, or with wait=True
        (the server's own bounded work, such as thumbnails) blocks until there is room."""
        if self._closing.is_set():
            raise Busy(5)
        future: Future = Future()
        try:
            self._queue.put((task, future), block=wait)
        except queue.Full:
            raise Busy(self.retry_after()) from None
        return future

    async def run(self, task: Task) -> T:
        """Run `task` on the device and wait for it without blocking the event loop (Busy if full)."""
        return await asyncio.wrap_future(self.submit(task))

    def retry_after(self) -> int:
        """Seconds until the queue has room, by the recent tasks' mean time: 1 to 60."""
        mean = sum(self._durations) / len(self._durations) if self._durations else 1.0
        return max(1, min(60, math.ceil(mean * (self.pending + self.running))))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            task, future = item
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
        self._closing.set()
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[1].cancel()
        try:
            self._queue.put_nowait(None)
        except queue.Full:  # cannot be: just emptied, and submit refuses now
            pass
        self._thread.join(timeout)
