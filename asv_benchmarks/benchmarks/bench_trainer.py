"""The example trainer, fastact.nn: one step and one epoch of 784-128-10.

Synthetic data of MNIST's shape (60000 images of 28 x 28 = 784 features in
[0, 1), float32, 10 classes), so nothing is downloaded; the speed of a step
does not depend on what the pixels show.  Skipped (NotImplementedError in
setup, asv's way to skip) where fastact.nn is missing.

* ``TrainStep.time_step``: one Adam step on one mini-batch of 128, as
  the public API spells it: ``model.compute_gradients(xb, yb)`` (forward,
  loss, backward) then ``optimizer.step()``.
* ``Epoch.time_epoch``: ``model.fit(X, y, epochs=1, batch_size=128,
  validation_split=0)``: 469 steps, shuffling and batch gathering included.
"""

import functools

import numpy as np

from . import common

SIZES = (784, 128, 10)
N_TRAIN = 60000
BATCH = 128


def _nn():
    try:
        import fastact.nn as nn
    except ImportError as exc:
        raise NotImplementedError(f"fastact.nn is not available: {exc}") from None
    return nn


@functools.lru_cache(maxsize=None)
def synthetic_mnist():
    """(X, y): float32 images in [0, 1) and int64 labels, fixed seed."""
    rng = np.random.default_rng([common.SEED, 7])
    x = rng.random((N_TRAIN, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], N_TRAIN)
    return x, y


class TrainStep:
    """One optimiser step (forward, loss, backward, Adam) on 128 samples."""

    params = [["relu", "gelu"]]
    param_names = ["activation"]
    repeat = (5, 50, 1.0)
    timeout = 120

    def setup(self, activation):
        nn = _nn()
        x, y = synthetic_mnist()
        self.xb, self.yb = x[:BATCH], y[:BATCH]
        self.model = nn.MLP(SIZES, activation=activation, seed=0)
        self.optimizer = nn.Adam(self.model.parameter_pairs(), lr=1e-3)

    def time_step(self, activation):
        self.model.compute_gradients(self.xb, self.yb)
        self.optimizer.step()


class Epoch:
    """One epoch of mini-batch training over the 60000 samples."""

    params = [["relu", "gelu"]]
    param_names = ["activation"]
    # An epoch takes seconds: time it once per sample, no warm-up call,
    # at most 3 samples or 20 s, in one process.
    number = 1
    warmup_time = 0.0
    min_run_count = 1
    repeat = (1, 3, 20.0)
    processes = 1
    timeout = 300

    def setup(self, activation):
        nn = _nn()
        self.x, self.y = synthetic_mnist()
        self.model = nn.MLP(SIZES, activation=activation, seed=0)

    def time_epoch(self, activation):
        self.model.fit(self.x, self.y, epochs=1, batch_size=BATCH, validation_split=0.0, seed=0)
