"""Load limits: a process-wide cap on analyses running at once, with a first-come queue, and a
per-session rate limit. Plain threading; the app keeps one gate per server process and one
limiter per session.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from core.policy.errors import InputError

__all__ = ["ConcurrencyGate", "RateLimiter"]

WaitFn = Callable[[int], None]  # called while waiting, with how many requests are ahead


class ConcurrencyGate:
    """At most ``capacity`` holders at once; the others wait in arrival order.

    >>> gate = ConcurrencyGate(1)
    >>> with gate.slot(timeout=1):
    ...     gate.active
    1
    >>> gate.active
    0
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._condition = threading.Condition()
        self._active = 0
        self._queue: deque[object] = deque()

    @property
    def active(self) -> int:
        return self._active

    @property
    def waiting(self) -> int:
        return len(self._queue)

    @contextmanager
    def slot(
        self, *, timeout: float, on_wait: WaitFn | None = None, poll: float = 0.25
    ) -> Iterator[None]:
        """Hold one slot for the block. While all are taken, ``on_wait(ahead)`` is called about
        every ``poll`` seconds (outside the lock, so it may draw a status); after ``timeout``
        seconds an :class:`InputError` says the server is busy. The slot is always released."""
        ticket = object()
        deadline = time.monotonic() + timeout
        with self._condition:
            self._queue.append(ticket)
        try:
            while True:
                with self._condition:
                    ahead = self._queue.index(ticket)
                    if ahead == 0 and self._active < self.capacity:
                        self._queue.popleft()
                        self._active += 1
                        break
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise InputError("error.busy", seconds=round(timeout))
                    self._condition.wait(min(poll, remaining))
                if on_wait is not None:
                    on_wait(ahead)
        except BaseException:
            with self._condition:
                if ticket in self._queue:
                    self._queue.remove(ticket)
                self._condition.notify_all()
            raise
        try:
            yield
        finally:
            with self._condition:
                self._active -= 1
                self._condition.notify_all()


class RateLimiter:
    """At most ``limit`` requests in any ``window`` seconds (a sliding window).

    >>> limiter = RateLimiter(2, 60.0)
    >>> limiter.acquire(now=0.0), limiter.acquire(now=1.0), limiter.acquire(now=2.0)
    (0.0, 0.0, 58.0)
    >>> limiter.acquire(now=60.5)
    0.0
    """

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self, now: float | None = None) -> float:
        """Record a request and return 0, or return how many seconds until one is allowed
        (recording nothing)."""
        moment = time.monotonic() if now is None else now
        with self._lock:
            while self._times and self._times[0] <= moment - self.window:
                self._times.popleft()
            if len(self._times) >= self.limit:
                return self._times[0] + self.window - moment
            self._times.append(moment)
            return 0.0

    def check(self, now: float | None = None) -> None:
        """:meth:`acquire`, raising an :class:`InputError` with the wait when over the limit."""
        wait = self.acquire(now)
        if wait > 0:
            raise InputError(
                "error.rate_limited",
                limit=self.limit,
                window=round(self.window),
                seconds=round(wait),
            )
