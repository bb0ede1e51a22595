"""The multi-layer perceptron: build, train, evaluate, save and load."""

import contextlib
import json
import math
import os
import time

import numpy as np

from . import _batches
from . import layers as _layers
from .layers import Activation, Dense, make_activation
from .losses import SoftmaxCrossEntropy, log_softmax
from .optim import Optimizer, make_optimizer

__all__ = ["MLP", "shuffle_rng", "FORMAT_VERSION"]

#: Version of the ``.npz`` layout written by :meth:`MLP.save`.
FORMAT_VERSION = 1

# fit(blas_threads="auto") keeps BLAS single-threaded while training when a
# step's largest matrix product has fewer multiply-adds than this.  Threading
# such small products saves little even on an idle machine (about 0.05 s of
# 0.4 s per epoch for 784-128-10 at batch 32) and, on a busy one, every
# product waits whole scheduler time slices for a descheduled BLAS thread:
# 2 OpenBLAS threads made an epoch 25-75x slower on the shared 2-CPU
# development machine.
_AUTO_BLAS_MACS = 1 << 24

# Parameters are packed into one flat array; each starts on a multiple of
# this many elements (64 bytes in float32) so every view is well aligned.
_ALIGN = 16


def shuffle_rng(seed):
    """The generator whose ``permutation(n)`` calls give ``fit``'s epoch orders.

    ``MLP.fit(..., seed=s)`` draws the order of epoch ``e`` as the ``e``-th
    call of ``shuffle_rng(s).permutation(n_train)``; a benchmark can replay
    exactly the same batches in another framework.
    """
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng([int(seed), 0x5EED])


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be positive, got {value}")
    return int(value)


class MLP:
    """A multi-layer perceptron for classification, trained with fastact kernels.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths from input to output, e.g. ``(784, 128, 10)``: a dense
        layer between consecutive sizes, the activation after every dense
        layer but the last, and softmax cross-entropy on the output.
    activation : str
        ``"relu"``, ``"leaky_relu"``, ``"prelu"``, ``"gelu"`` (exact) or
        ``"gelu_tanh"``.
    negative_slope : float
        Leaky ReLU's slope (PyTorch's default 0.01).
    prelu_init : float
        PReLU's initial per-unit slope (PyTorch's default 0.25).
    dtype : float32 (default) or float64
    seed : int, optional
        Seeds the initial weights (and, unless ``fit`` gets its own, the
        batch order).  The same seed gives the same model and training run.

    Attributes
    ----------
    layers : list of Layer
        ``[Dense, activation, Dense, ..., Dense]``.
    history : dict of lists
        Per-epoch metrics of the last ``fit``.
    """

    def __init__(self, sizes=(784, 128, 10), activation="relu", *, negative_slope=0.01,
                 prelu_init=0.25, dtype=np.float32, seed=None):
        sizes = tuple(sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes needs at least an input and an output size, got {sizes}")
        sizes = tuple(_positive_int(s, "every layer size") for s in sizes)
        if sizes[-1] < 2:
            raise ValueError(f"the output layer needs at least 2 classes, got {sizes[-1]}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        if seed is not None:
            seed = int(seed)
            if seed < 0:
                raise ValueError(f"seed must be a non-negative integer, got {seed}")
        self.sizes = sizes
        self.activation = str(activation)
        self.negative_slope = float(negative_slope)
        self.prelu_init = float(prelu_init)
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.layers = []
        self._steps = []
        for i in range(len(sizes) - 1):
            dense = Dense(sizes[i], sizes[i + 1], dtype=self.dtype, rng=rng, input_grad=i > 0)
            self.layers.append(dense)
            act = None
            if i < len(sizes) - 2:
                act = make_activation(activation, sizes[i + 1], self.dtype,
                                      negative_slope=negative_slope, prelu_init=prelu_init)
                self.layers.append(act)
            self._steps.append((dense, act))
        self.loss_fn = SoftmaxCrossEntropy(self.dtype)
        self.history = {}
        self._pack()

    # ------------------------------------------------------------------
    # Parameters
    # ------------------------------------------------------------------

    def _pack(self):
        """Move every parameter (and gradient) into one flat array each."""
        entries = []
        offset = 0
        for layer in self.layers:
            for name, param, _grad in layer.parameters():
                entries.append((layer, name, offset, param))
                offset += -(-param.size // _ALIGN) * _ALIGN
        self._flat_params = np.zeros(offset, dtype=self.dtype)
        self._flat_grads = np.zeros(offset, dtype=self.dtype)
        for layer, name, start, param in entries:
            p = self._flat_params[start:start + param.size].reshape(param.shape)
            p[...] = param
            g = self._flat_grads[start:start + param.size].reshape(param.shape)
            setattr(layer, name, p)
            setattr(layer, "grad_" + name, g)

    def parameter_pairs(self):
        """``[(params, grads)]``: the flat parameter and gradient arrays, for an optimiser."""
        return [(self._flat_params, self._flat_grads)]

    def named_parameters(self):
        """``[(name, array)]`` of every parameter, e.g. ``("layers.0.weight", W)``."""
        return [(f"layers.{i}.{name}", param)
                for i, layer in enumerate(self.layers)
                for name, param, _grad in layer.parameters()]

    @property
    def num_parameters(self):
        return sum(p.size for _n, p in self.named_parameters())

    # ------------------------------------------------------------------
    # Input checks
    # ------------------------------------------------------------------

    def _check_x(self, X, name="X"):
        if _batches.is_dask(X):
            return _batches.check_x(self, X, name)
        X = np.asarray(X)
        if X.dtype.kind not in "fiub":
            raise TypeError(f"{name} must hold numbers, got dtype {X.dtype}")
        if X.ndim != 2:
            hint = ""
            if X.ndim == 3:
                hint = "; flatten images first, e.g. with fastact.datasets.to_float(images)"
            raise ValueError(
                f"{name} must be 2-D (samples, features), got shape {X.shape}{hint}"
            )
        if X.shape[1] != self.sizes[0]:
            raise ValueError(
                f"{name} has {X.shape[1]} features per sample but the model expects "
                f"{self.sizes[0]}"
            )
        if X.shape[0] == 0:
            raise ValueError(f"{name} holds no samples")
        with np.errstate(over="ignore", invalid="ignore"):
            X = np.ascontiguousarray(X, dtype=self.dtype)
        finite = np.isfinite(X)
        if not finite.all():
            row, col = np.argwhere(~finite)[0]
            count = int(finite.size - np.count_nonzero(finite))
            raise ValueError(
                f"{name} contains {count} NaN or infinite value(s) (first at sample {row}, "
                f"feature {col}) or values too large for {self.dtype}"
            )
        return X

    def _check_y(self, y, n, name="y"):
        if _batches.is_dask(y):
            return _batches.check_y(self, y, n, name)
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(
                f"{name} must be 1-D class labels (one integer per sample), got shape {y.shape}"
            )
        if y.dtype.kind == "f":
            if not (np.isfinite(y).all() and np.array_equal(y, np.round(y))):
                raise ValueError(f"{name} must hold integer class labels, got non-integer values")
        elif y.dtype.kind not in "iub":
            raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
        if y.shape[0] != n:
            raise ValueError(f"X holds {n} samples but {name} holds {y.shape[0]} labels")
        classes = self.sizes[-1]
        bad = (y < 0) | (y >= classes)
        if bad.any():
            raise ValueError(
                f"{name} has {int(np.count_nonzero(bad))} label(s) outside 0..{classes - 1} "
                f"(min {y.min()}, max {y.max()}); the model has {classes} classes"
            )
        return np.ascontiguousarray(y, dtype=np.int32)

    # ------------------------------------------------------------------
    # Forward / backward
    # ------------------------------------------------------------------

    def _forward(self, x):
        for dense, act in self._steps:
            x = dense.forward(x, act)
        return x

    def _backward(self, grad):
        for dense, _act in reversed(self._steps):
            grad = dense.backward(grad)

    def compute_gradients(self, X, y):
        """Mean loss on (X, y); the gradients are left in each layer's ``grad_*``.

        Returns the loss.  ``parameter_pairs()[0][1]`` holds all gradients.
        """
        X = self._check_x(X)
        y = self._check_y(y, X.shape[0])
        loss, _correct, grad = self.loss_fn.forward_backward(self._forward(X), y)
        self._backward(grad)
        return loss

    def _logits_chunks(self, X, batch_size):
        for start in range(0, X.shape[0], batch_size):
            yield start, self._forward(X[start:start + batch_size])

    def predict_proba(self, X, batch_size=1024):
        """Class probabilities, shape ``(samples, classes)``, in the model dtype.

        A dask X gives a lazy dask array, computed block by block.
        """
        X = self._check_x(X)
        if _batches.is_dask(X):
            return _batches.predict(self, X, batch_size, proba=True)
        out = np.empty((X.shape[0], self.sizes[-1]), dtype=self.dtype)
        for start, logits in self._logits_chunks(X, batch_size):
            out[start:start + logits.shape[0]] = np.exp(log_softmax(logits))
        return out

    def predict(self, X, batch_size=1024):
        """Predicted class per sample (int64 array; lazy for a dask X)."""
        X = self._check_x(X)
        if _batches.is_dask(X):
            return _batches.predict(self, X, batch_size, proba=False)
        out = np.empty(X.shape[0], dtype=np.int64)
        for start, logits in self._logits_chunks(X, batch_size):
            out[start:start + logits.shape[0]] = np.argmax(logits, axis=1)
        return out

    def loss(self, X, y, batch_size=1024):
        """Mean cross-entropy on (X, y), accumulated in float64."""
        return self.evaluate(X, y, batch_size)["loss"]

    def evaluate(self, X, y, batch_size=1024):
        """``{"loss": mean cross-entropy, "accuracy": fraction correct}``.

        Dask arrays are evaluated block by block with the current scheduler.
        """
        X = self._check_x(X)
        y = self._check_y(y, X.shape[0])
        return self._evaluate(X, y, batch_size)

    def _evaluate(self, X, y, batch_size=1024):
        if _batches.is_dask(X) or _batches.is_dask(y):
            return _batches.evaluate(self, X, y, batch_size)
        total, correct = 0.0, 0
        for start, logits in self._logits_chunks(X, batch_size):
            labels = y[start:start + logits.shape[0]]
            logp = log_softmax(logits.astype(np.float64))
            total -= float(logp[np.arange(labels.shape[0]), labels].sum())
            correct += int(np.count_nonzero(np.argmax(logits, axis=1) == labels))
        n = X.shape[0]
        return {"loss": total / n, "accuracy": correct / n}

    # ------------------------------------------------------------------
    # Training
    # ------------------------------------------------------------------

    def fit(self, X, y, epochs=10, batch_size=32, validation_split=0.1, validation_data=None,
            optimizer="adam", lr=1e-3, momentum=0.0, weight_decay=0.0, shuffle=True,
            seed=None, progress=None, on_epoch_end=None, blas_threads="auto"):
        """Train with mini-batches; returns (and stores) the per-epoch history.

        Parameters
        ----------
        X : array (samples, features); y : int array (samples,)
            Dask arrays are streamed a block at a time; see docs/dask.md
            for the batch order.
        epochs, batch_size : int
            The last batch of an epoch may be smaller (it is not dropped).
        validation_split : float in [0, 1)
            Hold out this fraction of the samples, taken from the *end* of
            X (before shuffling), for validation.  Ignored when
            ``validation_data=(X_val, y_val)`` is given.
        optimizer : "adam", "sgd" or an :class:`~fastact.nn.optim.Optimizer`
            built on ``self.parameter_pairs()``; the name form uses ``lr``,
            ``momentum`` (SGD) and ``weight_decay``.
        shuffle : bool
            Reshuffle every epoch with ``shuffle_rng(seed)``.
        seed : int or numpy.random.Generator, optional
            Seed of the batch order (default: the model's seed), or a
            generator to draw the epoch permutations from (advanced in place,
            so successive ``fit`` calls continue one sequence).
        progress : callable, optional
            ``progress(total_steps, description)`` returning an object with
            ``update(n)`` and ``close()`` (a tqdm factory, say); called per epoch.
        on_epoch_end : callable, optional
            ``on_epoch_end(epoch, logs)`` after every epoch; ``logs`` holds
            that epoch's entries of the history.
        blas_threads : "auto", int or None
            Limit on the BLAS library's threads during ``fit`` (through
            threadpoolctl, when installed; the validation passes included).  ``"auto"``: one thread when a step's matrix products
            are small (batch x largest layer < 2**24 multiply-adds, e.g.
            784-128 at batch 32), where threads gain little and stall badly
            on a busy machine; otherwise unchanged.  ``None``: unchanged.

        Returns
        -------
        dict of lists
            ``loss`` and ``accuracy`` (training, averaged over the epoch's
            batches), ``val_loss`` and ``val_accuracy`` (if validating),
            ``epoch_time`` (seconds of shuffling and training steps) and
            ``eval_time`` (seconds of validation).
        """
        epochs = _positive_int(epochs, "epochs") if epochs != 0 else 0
        batch_size = _positive_int(batch_size, "batch_size")
        X = self._check_x(X)
        y = self._check_y(y, X.shape[0])
        if validation_data is not None:
            try:
                X_val, y_val = validation_data
            except (TypeError, ValueError):
                raise ValueError("validation_data must be a pair (X_val, y_val)") from None
            X_val = self._check_x(X_val, "X_val")
            y_val = self._check_y(y_val, X_val.shape[0], "y_val")
            X_train, y_train = X, y
        else:
            split = float(validation_split or 0.0)
            if not 0.0 <= split < 1.0:
                raise ValueError(f"validation_split must lie in [0, 1), got {validation_split}")
            n_val = int(X.shape[0] * split)
            if n_val and n_val == X.shape[0]:  # pragma: no cover - split < 1
                raise ValueError("validation_split leaves no training samples")
            n_train = X.shape[0] - n_val
            X_train, y_train = X[:n_train], y[:n_train]
            X_val, y_val = (X[n_train:], y[n_train:]) if n_val else (None, None)
        if isinstance(optimizer, Optimizer):
            opt = optimizer
        else:
            opt = make_optimizer(optimizer, self.parameter_pairs(), lr=lr, momentum=momentum,
                                 weight_decay=weight_decay)
        if isinstance(seed, np.random.Generator):
            rng = seed
        else:
            rng = shuffle_rng(self.seed if seed is None else seed)
        n = X_train.shape[0]
        steps = -(-n // batch_size)
        xb_full = np.empty((min(batch_size, n), X.shape[1]), dtype=self.dtype)
        yb_full = np.empty(min(batch_size, n), dtype=np.int32)
        order = np.arange(n)
        forward, backward = self._forward, self._backward
        loss_step = self.loss_fn.forward_backward
        opt_step = opt.step
        take = np.take
        if _batches.is_dask(X_train) or _batches.is_dask(y_train):  # streamed: docs/dask.md
            reader = _batches.BlockReader(X_train, y_train, self.dtype, self._check_y)
            X_train, y_train, take = reader.X, reader.y, reader.take
            rng = reader.permutation_source(rng)
        keys = ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_time", "eval_time")
        history = {k: [] for k in keys}
        self.history = history
        tick = max(1, steps // 100)
        with self._blas_limit(blas_threads, min(batch_size, n)):
            self._train_epochs(
                epochs, steps, batch_size, n, X_train, y_train, X_val, y_val, xb_full,
                yb_full, rng, shuffle, order, forward, backward, loss_step, opt_step, take,
                history, tick, progress, on_epoch_end)
        for k in keys:
            if not history[k]:
                del history[k]
        return history

    def _blas_limit(self, blas_threads, batch_size):
        if blas_threads is None:
            return contextlib.nullcontext()
        if blas_threads == "auto":
            widest = max(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:]))
            if batch_size * widest >= _AUTO_BLAS_MACS:
                return contextlib.nullcontext()
            blas_threads = 1
        blas_threads = _positive_int(blas_threads, "blas_threads")
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - optional
            return contextlib.nullcontext()
        return threadpool_limits(limits=blas_threads, user_api="blas")

    def _train_epochs(self, epochs, steps, batch_size, n, X_train, y_train, X_val, y_val,
                      xb_full, yb_full, rng, shuffle, order, forward, backward, loss_step,
                      opt_step, take, history, tick, progress, on_epoch_end):
        for epoch in range(epochs):
            bar = progress(steps, f"epoch {epoch + 1}/{epochs}") if progress else None
            t0 = time.perf_counter()
            perm = rng.permutation(n) if shuffle else order
            loss_sum, correct = 0.0, 0
            for s in range(steps):
                idx = perm[s * batch_size:(s + 1) * batch_size]
                m = idx.shape[0]
                if m == batch_size:
                    xb, yb = xb_full, yb_full
                else:
                    xb, yb = xb_full[:m], yb_full[:m]
                take(X_train, idx, axis=0, out=xb, mode="clip")
                take(y_train, idx, out=yb, mode="clip")
                loss, c, grad = loss_step(forward(xb), yb)
                if not math.isfinite(loss):
                    raise FloatingPointError(
                        f"training diverged: the loss is {loss} at epoch {epoch + 1}, "
                        f"step {s + 1}; try a smaller learning rate"
                    )
                backward(grad)
                opt_step()
                loss_sum += loss * m
                correct += c
                if bar is not None and (s + 1) % tick == 0:
                    bar.update(tick)
            epoch_time = time.perf_counter() - t0
            if bar is not None:
                bar.update(steps - (steps // tick) * tick)
                bar.close()
            logs = {"loss": loss_sum / n, "accuracy": correct / n, "epoch_time": epoch_time}
            if X_val is not None:
                t1 = time.perf_counter()
                val = self._evaluate(X_val, y_val)  # (under the fit's BLAS limit too)
                logs.update(val_loss=val["loss"], val_accuracy=val["accuracy"],
                            eval_time=time.perf_counter() - t1)
            for k, v in logs.items():
                history[k].append(v)
            if on_epoch_end is not None:
                on_epoch_end(epoch, logs)

    # ------------------------------------------------------------------
    # Persistence
    # ------------------------------------------------------------------

    def config(self):
        """The constructor arguments, JSON-friendly."""
        return {
            "sizes": list(self.sizes),
            "activation": self.activation,
            "negative_slope": self.negative_slope,
            "prelu_init": self.prelu_init,
            "dtype": self.dtype.name,
            "seed": self.seed,
        }

    def save(self, path):
        """Write the architecture and every parameter to a ``.npz`` file at ``path``.

        The file is written exactly at ``path`` (no suffix is added).
        Returns ``path``.
        """
        header = {"format": "fastact.nn.MLP", "version": FORMAT_VERSION, "config": self.config()}
        arrays = {name: param for name, param in self.named_parameters()}
        directory = os.path.dirname(os.fspath(path))
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(path, "wb") as handle:
            np.savez(handle, __header__=np.array(json.dumps(header)), **arrays)
        return path

    @classmethod
    def load(cls, path):
        """Rebuild a model saved by :meth:`save`; it predicts bit-identically."""
        try:
            with np.load(path, allow_pickle=False) as data:
                if "__header__" not in data.files:
                    raise ValueError(f"{path}: not a fastact model file (no header)")
                header = json.loads(str(data["__header__"]))
                if header.get("format") != "fastact.nn.MLP":
                    raise ValueError(f"{path}: not a fastact MLP file")
                if header.get("version", 0) > FORMAT_VERSION:
                    raise ValueError(
                        f"{path}: written by a newer fastact (format {header['version']})"
                    )
                model = cls(**header["config"])
                for name, param in model.named_parameters():
                    if name not in data.files:
                        raise ValueError(f"{path}: parameter {name} is missing")
                    stored = data[name]
                    if stored.shape != param.shape:
                        raise ValueError(
                            f"{path}: parameter {name} has shape {stored.shape}, "
                            f"expected {param.shape}"
                        )
                    param[...] = stored
        except FileNotFoundError:
            raise
        except ValueError as exc:
            if str(exc).startswith(str(path)):
                raise
            raise ValueError(f"{path}: not a readable fastact model file ({exc})") from None
        except Exception as exc:  # zipfile.BadZipFile, OSError, EOFError, KeyError...
            raise ValueError(
                f"{path}: not a readable fastact model file ({type(exc).__name__}: {exc})"
            ) from None
        return model

    def __repr__(self):
        return (f"MLP(sizes={self.sizes}, activation={self.activation!r}, "
                f"dtype={self.dtype.name}, seed={self.seed})")
