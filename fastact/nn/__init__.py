"""fastact.nn: a minimal multi-layer-perceptron trainer built on fastact's kernels.

>>> import numpy as np
>>> from fastact.nn import MLP
>>> model = MLP((4, 8, 3), activation="gelu", seed=0)
>>> X = np.random.default_rng(0).random((30, 4), dtype=np.float32)
>>> y = np.arange(30) % 3
>>> history = model.fit(X, y, epochs=2, batch_size=8, validation_split=0.2)
>>> model.predict(X[:5]).shape
(5,)

The kernels in :mod:`fastact` never import this package.
``MLPClassifier``, a scikit-learn estimator over ``MLP``, is loaded on first
use (it needs the ``fastact[sklearn]`` extra).
"""

from .layers import ACTIVATIONS, GELU, Activation, Dense, Layer, LeakyReLU, PReLU, ReLU, make_activation
from .losses import SoftmaxCrossEntropy, log_softmax
from .checkpoint import CheckpointError
from .model import MLP, TrainingInterrupted, shuffle_rng
from .optim import SGD, Adam, Optimizer, make_optimizer

__all__ = [
    "MLP",
    "Layer",
    "Dense",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "GELU",
    "make_activation",
    "ACTIVATIONS",
    "SoftmaxCrossEntropy",
    "log_softmax",
    "Optimizer",
    "SGD",
    "Adam",
    "make_optimizer",
    "shuffle_rng",
    "CheckpointError",
    "TrainingInterrupted",
]


def __getattr__(name):
    # scikit-learn is imported only when MLPClassifier is asked for.
    if name == "MLPClassifier":
        from .sklearn import MLPClassifier

        return MLPClassifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
