"""The time limit on grading one file: reading, checking and evaluating it, in the worker's pool process."""
from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager

TIME_LIMIT_S = 60          # load + check + evaluate of one file (a valid one takes well under a second)


class GradingTimeout(Exception):
    """Loading and evaluating one file took longer than the job's time limit."""


@contextmanager
def time_limit(seconds: float):
    """GradingTimeout in this thread once `seconds` have passed: SIGALRM from a real-time interval timer.
    Celery's prefork pool runs each task in its process's main thread, where Python handles signals; its own
    soft time limit is SIGUSR1 and its hard limit a kill from the parent, so neither meets this one. The previous
    handler and timer are back on the way out. Elsewhere than the main thread only the task's limits apply."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum, frame):
        raise GradingTimeout(f"loading and evaluating took longer than the time limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    start = time.monotonic()
    earlier, interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
        finally:  # even when the alarm lands on the way out, the previous handler comes back
            signal.signal(signal.SIGALRM, previous)
        if earlier:  # someone else's timer: give it back what is left of it
            signal.setitimer(signal.ITIMER_REAL, max(earlier - (time.monotonic() - start), 1e-3), interval)
