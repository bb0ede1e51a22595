"""Ctrl-C during training: finish the current step, then stop cleanly.

A ``KeyboardInterrupt`` raised in the middle of a step would leave the
weights half-updated (the optimiser writes them in place).  While
:class:`DeferredInterrupt` is active, the first SIGINT only sets a flag that
the training loop checks after each step; a second one interrupts at once,
as usual.  It changes nothing outside the main thread (Python delivers
signals there only) or when a program has installed its own SIGINT handler.
"""

import signal
import threading

__all__ = ["DeferredInterrupt", "TrainingInterrupted"]


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C at the end of a step.

    Attributes
    ----------
    epoch, step : int
        1-based epoch and the steps completed in it when training stopped.
    checkpoint : str or None
        The checkpoint written on the way out, if any.
    """

    def __init__(self, message, epoch, step, checkpoint=None):
        super().__init__(message)
        self.epoch, self.step, self.checkpoint = epoch, step, checkpoint

    def __str__(self):
        return self.args[0]


class DeferredInterrupt:
    """Context manager: ``requested`` becomes True at the first SIGINT."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        return False
