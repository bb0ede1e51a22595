"""The multi-layer perceptron: build, train, evaluate, save and load."""

import contextlib
import json
import math
import os
import time

import numpy as np

from . import _batches
from . import checkpoint as _ckpt
from . import layers as _layers
from ._interrupt import DeferredInterrupt as _DeferredInterrupt
from ._interrupt import TrainingInterrupted
from .layers import Activation, Dense, make_activation
from .losses import SoftmaxCrossEntropy, log_softmax
from .optim import Optimizer, make_optimizer

__all__ = ["MLP", "shuffle_rng", "FORMAT_VERSION", "TrainingInterrupted"]

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

    Parameters
    ----------
    seed : int or None
        A non-negative integer; None draws fresh entropy from the operating
        system (an unrepeatable order).

    Returns
    -------
    numpy.random.Generator
        A new generator, seeded with ``[seed, 0x5EED]`` (so its stream
        differs from that of the model's initial weights).

    Raises
    ------
    ValueError
        ``seed`` is negative.
    """
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng([int(seed), 0x5EED])


def _resolve_dtype(dtype):
    """(parameter dtype, activation storage dtype) for MLP's ``dtype`` argument."""
    if isinstance(dtype, str) and dtype.strip().lower() == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            raise ImportError(
                "dtype='bfloat16' needs ml_dtypes: pip install 'fastact[half]'") from None
        dtype = ml_dtypes.bfloat16
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64 (or bfloat16: mixed "
                        f"precision), got {dtype!r}") from None
    if dt.name == "bfloat16":
        # Mixed precision: weights, gradients, optimiser state and matrix
        # products in float32, activations stored in bfloat16.
        return np.dtype(np.float32), dt
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64 (or bfloat16: mixed "
                        f"precision), got {dt}")
    return dt, dt


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
    dtype : float32 (default), float64 or "bfloat16"
        ``"bfloat16"`` (or ``ml_dtypes.bfloat16``; needs the ``half``
        extra) is mixed precision: the hidden layers' pre-activations and
        activations are stored in bfloat16 and go through fastact's bfloat16
        kernels, while weights, gradients, optimiser state and the matrix
        products stay float32 (``model.dtype`` is then float32 and
        ``model.activation_dtype`` bfloat16).
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
        self.dtype, self.activation_dtype = _resolve_dtype(dtype)
        storage = None if self.activation_dtype == self.dtype else self.activation_dtype
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
                                      negative_slope=negative_slope, prelu_init=prelu_init,
                                      storage_dtype=storage)
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
        """``[(params, grads)]``: the flat parameter and gradient arrays, for an optimiser.

        Returns
        -------
        list of (ndarray, ndarray)
            One pair of 1-D arrays of the model's dtype, which hold every
            parameter and every gradient (each starts on a multiple of 16
            elements; the gaps are zero).  They are the model's storage,
            not copies: the layers' parameters and ``grad_*`` attributes
            are views of them.
        """
        return [(self._flat_params, self._flat_grads)]

    def named_parameters(self):
        """``[(name, array)]`` of every parameter, e.g. ``("layers.0.weight", W)``.

        Returns
        -------
        list of (str, ndarray)
            ``"layers.<i>.<name>"``, with ``i`` the layer's index in
            :attr:`layers` (activations count) and ``name`` one of its
            ``param_names``: a dense layer's ``weight`` of shape ``(in,
            out)`` and ``bias`` of shape ``(out,)``, a PReLU's ``weight`` of
            shape ``(width,)``.  The arrays are writable views of the
            model's parameters, in the model's dtype.
        """
        return [(f"layers.{i}.{name}", param)
                for i, layer in enumerate(self.layers)
                for name, param, _grad in layer.parameters()]

    @property
    def num_parameters(self):
        """The number of trainable values (int), without the alignment gaps."""
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
        return _batches._block_x(X, self.dtype, 0, name)

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

        Parameters
        ----------
        X : array_like of shape (samples, features)
            Numbers (bool, integer or floating), finite, converted to the
            model's dtype.  All of X is one batch.
        y : array_like of int, shape (samples,)
            Class labels in ``0..classes-1`` (integral floats are accepted).

        Returns
        -------
        float
            The mean cross-entropy of the batch.  The gradients of the mean
            loss are written (overwritten, not accumulated) into the layers'
            ``grad_*`` arrays; the parameters are not changed.

        Raises
        ------
        TypeError, ValueError
            X or y is not as described; the message names which.
        """
        X = self._check_x(X)
        y = self._check_y(y, X.shape[0])
        loss, _correct, grad = self.loss_fn.forward_backward(self._forward(X), y)
        self._backward(grad)
        return loss

    def _logits_chunks(self, X, batch_size):
        batch_size = _positive_int(batch_size, "batch_size")
        for start in range(0, X.shape[0], batch_size):
            yield start, self._forward(X[start:start + batch_size])

    def predict_proba(self, X, batch_size=1024):
        """Class probabilities, shape ``(samples, classes)``, in the model dtype.

        A dask X gives a lazy dask array, computed block by block.

        Parameters
        ----------
        X : array_like of shape (samples, features)
            Numbers (bool, integer or floating), finite, converted to the
            model's dtype.  A dask array is checked block by block.
        batch_size : int
            Samples per forward pass (bounds the memory used); positive.

        Returns
        -------
        ndarray of shape (samples, classes)
            The softmax of the logits, each row summing to 1, of the
            model's dtype (float32 for a bfloat16 model); a dask array for
            a dask X, with the weights as they are at the call.

        Raises
        ------
        TypeError, ValueError
            X is not as described; the message says how.
        """
        X = self._check_x(X)
        if _batches.is_dask(X):
            return _batches.predict(self, X, _positive_int(batch_size, "batch_size"), proba=True)
        out = np.empty((X.shape[0], self.sizes[-1]), dtype=self.dtype)
        for start, logits in self._logits_chunks(X, batch_size):
            out[start:start + logits.shape[0]] = np.exp(log_softmax(logits))
        return out

    def predict(self, X, batch_size=1024):
        """Predicted class per sample (int64 array; lazy for a dask X).

        Parameters
        ----------
        X : array_like of shape (samples, features)
            Numbers (bool, integer or floating), finite, converted to the
            model's dtype.  A dask array is checked block by block.
        batch_size : int
            Samples per forward pass (bounds the memory used); positive.

        Returns
        -------
        ndarray of int64, shape (samples,)
            The class with the largest logit (the first, on ties); a dask
            array for a dask X, with the weights as they are at the call.

        Raises
        ------
        TypeError, ValueError
            X is not as described; the message says how.
        """
        X = self._check_x(X)
        if _batches.is_dask(X):
            return _batches.predict(self, X, _positive_int(batch_size, "batch_size"), proba=False)
        out = np.empty(X.shape[0], dtype=np.int64)
        for start, logits in self._logits_chunks(X, batch_size):
            out[start:start + logits.shape[0]] = np.argmax(logits, axis=1)
        return out

    def loss(self, X, y, batch_size=1024):
        """Mean cross-entropy on (X, y), accumulated in float64.

        ``evaluate(X, y, batch_size)["loss"]``; see :meth:`evaluate` for
        the parameters and errors.

        Returns
        -------
        float
        """
        return self.evaluate(X, y, batch_size)["loss"]

    def evaluate(self, X, y, batch_size=1024):
        """``{"loss": mean cross-entropy, "accuracy": fraction correct}``.

        Dask arrays are evaluated block by block with the current scheduler.

        Parameters
        ----------
        X : array_like of shape (samples, features)
            Numbers (bool, integer or floating), finite, converted to the
            model's dtype.  NumPy or dask.
        y : array_like of int, shape (samples,)
            Class labels in ``0..classes-1`` (integral floats are accepted);
            NumPy or dask.
        batch_size : int
            Samples per forward pass (bounds the memory used); positive.

        Returns
        -------
        dict
            ``"loss"``: the mean cross-entropy (natural logarithm),
            accumulated in float64; ``"accuracy"``: the fraction of samples
            whose largest logit is the label.  Both are floats, computed
            now (also for dask arrays).

        Raises
        ------
        TypeError, ValueError
            X or y is not as described; the message names which.
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
            seed=None, progress=None, on_epoch_end=None, blas_threads="auto",
            checkpoint=None, checkpoint_every=None, resume=None):
        """Train with mini-batches; returns (and stores) the per-epoch history.

        Parameters
        ----------
        X : array_like of shape (samples, features)
            Numbers, finite, converted to the model's dtype.  Dask arrays
            (X, y or both) are streamed a block at a time; see docs/dask.md
            for the batch order.
        y : array_like of int, shape (samples,)
            Class labels in ``0..classes-1``.
        epochs, batch_size : int
            The last batch of an epoch may be smaller (it is not dropped).
        validation_split : float in [0, 1)
            Hold out this fraction of the samples, taken from the *end* of
            X (before shuffling), for validation.  Ignored when
            ``validation_data=(X_val, y_val)`` is given.
        validation_data : (X_val, y_val), optional
            Validation samples, checked like X and y.
        optimizer : "adam", "sgd" or an :class:`~fastact.nn.optim.Optimizer`
            built on ``self.parameter_pairs()``; the name form uses ``lr``,
            ``momentum`` (SGD) and ``weight_decay``.
        lr, momentum, weight_decay : float
            Settings of a named optimiser (see :func:`make_optimizer`);
            ignored when ``optimizer`` is an Optimizer.
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
        checkpoint : str or path-like, optional
            Write a checkpoint here (atomically: see
            :mod:`fastact.nn.checkpoint`) at the end of every epoch, or every
            ``checkpoint_every`` training steps, and at the end of training.
        checkpoint_every : int, optional
            Steps between checkpoints, counted over the whole run.
        resume : str or path-like, optional
            Continue from a checkpoint written by a run with the same model,
            data, batch size, validation split, shuffling, seed and optimiser
            (anything else raises :class:`~fastact.nn.checkpoint.CheckpointError`
            naming the settings that differ).  ``epochs`` may be larger than
            the first run's.  The final weights are bit-identical to those of
            a run that was never stopped.

        Returns
        -------
        dict of lists
            ``loss`` and ``accuracy`` (training, averaged over the epoch's
            batches), ``val_loss`` and ``val_accuracy`` (if validating),
            ``epoch_time`` (seconds of shuffling and training steps) and
            ``eval_time`` (seconds of validation).  The model's parameters
            are updated in place.

        Raises
        ------
        FloatingPointError
            The loss or the weights became NaN or infinite; the message names
            the epoch and step.  No checkpoint is written from that state.
        TypeError, ValueError
            An argument is not as described; the message names it.
        CheckpointError
            ``resume`` names a damaged checkpoint or one of another run.
        TrainingInterrupted
            Ctrl-C; see the notes.

        Notes
        -----
        Ctrl-C (SIGINT, in the main thread) stops training at the end of the
        current step: the checkpoint is written if one is asked for, and
        :class:`~fastact.nn.model.TrainingInterrupted` (a ``KeyboardInterrupt``)
        is raised.  A second Ctrl-C interrupts at once.
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
        if checkpoint_every is not None:
            if checkpoint is None:
                raise ValueError("checkpoint_every needs a checkpoint file (checkpoint=...)")
            checkpoint_every = _positive_int(checkpoint_every, "checkpoint_every")
        n = X_train.shape[0]
        steps = -(-n // batch_size)
        take = np.take
        if _batches.is_dask(X_train) or _batches.is_dask(y_train):  # streamed: docs/dask.md
            if checkpoint is not None or resume is not None:
                raise ValueError("checkpoint= and resume= need NumPy training data; "
                                 "a streamed fit on dask arrays cannot be checkpointed yet")
            reader = _batches.BlockReader(X_train, y_train, self.dtype, self._check_y)
            X_train, y_train, take = reader.X, reader.y, reader.take
            rng = reader.permutation_source(rng)
        keys = ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_time", "eval_time")
        state = _ckpt.TrainState(history={k: [] for k in keys})
        run = None
        if checkpoint is not None or resume is not None:
            run = self._run_settings(X_train, y_train, X_val, y_val, batch_size, shuffle,
                                     seed, validation_data is not None, validation_split, opt)
        if resume is not None:
            state = self._resume(resume, run, opt, rng, epochs, steps, keys)
        state.rng_state = rng.bit_generator.state
        self.history = state.history
        loop = _Loop(self, opt, rng, state, run, X_train, y_train, X_val, y_val, epochs,
                     steps, batch_size, shuffle, progress, on_epoch_end, checkpoint,
                     checkpoint_every, take)
        # Divergence is reported as an error below, so NumPy's overflow
        # warnings on the way there would only be noise.
        with self._blas_limit(blas_threads, min(batch_size, n)), \
                np.errstate(over="ignore", invalid="ignore", divide="ignore"), \
                _DeferredInterrupt() as interrupt:
            loop.run(interrupt)
        history = dict(state.history)
        for k in keys:
            if not history.get(k):
                history.pop(k, None)
        self.history = history
        return history

    def _run_settings(self, X_train, y_train, X_val, y_val, batch_size, shuffle, seed,
                      explicit_validation, validation_split, opt):
        """What a resumed run must share with the one that wrote the checkpoint."""
        if isinstance(seed, np.random.Generator):
            seed = "generator"  # its state is in the checkpoint; nothing to compare
        return {
            "model": self.config(),
            "fit": {"batch_size": batch_size, "shuffle": bool(shuffle),
                    "seed": self.seed if seed is None else seed,
                    "validation": "validation_data" if explicit_validation
                    else float(validation_split or 0.0)},
            "optimizer": opt.hyperparameters(),
            "data": {"train": list(X_train.shape),
                     "validation": None if X_val is None else list(X_val.shape),
                     "digest": _ckpt.data_digest(X_train, y_train, X_val, y_val)},
        }

    def _resume(self, path, run, opt, rng, epochs, steps, keys):
        """Load a checkpoint into the model, optimiser and generator; return its state."""
        ck = _ckpt.load_checkpoint(path)
        _ckpt.check_run(ck.path, ck.run, run)
        state = ck.state
        if state.step > steps:
            raise _ckpt.CheckpointError(
                f"{ck.path}: damaged checkpoint: step {state.step} of an epoch of {steps} steps")
        if state.epoch > epochs or (state.epoch == epochs and state.step > 0):
            raise _ckpt.CheckpointError(
                f"{ck.path}: the checkpoint is past epoch {epochs} (it has {state.epoch} "
                f"epochs and {state.step} steps done); ask for at least {state.epoch + 1} epochs")
        unknown = set(state.history) - set(keys)
        if unknown:
            raise _ckpt.CheckpointError(
                f"{ck.path}: damaged checkpoint: unknown history entries {sorted(unknown)}")
        # Each restore checks everything before it copies; keep what was there
        # so that a failure in a later one leaves no mixture behind.
        saved_params = self._flat_params.copy()
        saved_opt = opt.state_dict()
        saved_opt = {"steps": saved_opt["steps"],
                     "arrays": {k: v.copy() for k, v in saved_opt["arrays"].items()}}
        saved_rng = rng.bit_generator.state
        try:
            _ckpt.restore_parameters(ck, self.named_parameters())
            _ckpt.restore_optimizer(ck, opt)
            _ckpt.restore_rng(ck, rng)
        except BaseException:
            self._flat_params[...] = saved_params
            opt.load_state_dict(saved_opt)
            rng.bit_generator.state = saved_rng
            raise
        state.history = {k: list(state.history.get(k, [])) for k in keys}
        return state

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

    # ------------------------------------------------------------------
    # Persistence
    # ------------------------------------------------------------------

    def config(self):
        """The constructor arguments, JSON-friendly.

        Returns
        -------
        dict
            ``sizes`` (list), ``activation``, ``negative_slope``,
            ``prelu_init``, ``dtype`` (the name: ``"float32"``,
            ``"float64"`` or ``"bfloat16"``) and ``seed``.
            ``MLP(**model.config())`` builds the same network with the same
            initial weights (not the trained ones: see :meth:`save`).
        """
        return {
            "sizes": list(self.sizes),
            "activation": self.activation,
            "negative_slope": self.negative_slope,
            "prelu_init": self.prelu_init,
            "dtype": self.activation_dtype.name,  # "bfloat16" for mixed precision
            "seed": self.seed,
        }

    def save(self, path):
        """Write the architecture and every parameter to a ``.npz`` file at ``path``.

        The file is written exactly at ``path`` (no suffix is added), through
        a temporary file renamed over it, so a crash never leaves a
        half-written model.  Returns ``path``.

        Parameters
        ----------
        path : str or path-like
            The file to write (replaced if it exists); missing parent
            folders are created.

        Returns
        -------
        str or path-like
            ``path``, as given.

        Raises
        ------
        OSError
            The file or its folder cannot be written; an existing file is
            then left as it was.
        """
        header = {"format": "fastact.nn.MLP", "version": FORMAT_VERSION, "config": self.config()}
        arrays = {name: param for name, param in self.named_parameters()}
        directory = os.path.dirname(os.fspath(path))
        if directory:
            os.makedirs(directory, exist_ok=True)

        def write(handle):
            np.savez(handle, __header__=np.array(json.dumps(header)), **arrays)

        _ckpt.atomic_write(path, write)
        return path

    @classmethod
    def load(cls, path):
        """Rebuild a model saved by :meth:`save`; it predicts bit-identically.

        Parameters
        ----------
        path : str or path-like
            A file written by :meth:`save`.

        Returns
        -------
        MLP
            A new model with the saved configuration and parameters (its
            ``history`` is empty).

        Raises
        ------
        FileNotFoundError
            ``path`` does not exist.
        ValueError
            The file is not a fastact model, is damaged (a missing
            parameter, a wrong shape, not a readable ``.npz``) or was
            written by a newer fastact; the message names the file.
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                if "__header__" not in data.files:
                    raise ValueError(f"{path}: not a fastact model file (no header)")
                header = json.loads(str(data["__header__"]))
                if not isinstance(header, dict) or header.get("format") != "fastact.nn.MLP":
                    raise ValueError(f"{path}: not a fastact MLP file")
                version = header.get("version")
                if not isinstance(version, int) or isinstance(version, bool) or version < 1:
                    raise ValueError(f"{path}: damaged model file: bad version {version!r}")
                if not isinstance(header.get("config"), dict):
                    raise ValueError(f"{path}: damaged model file: no model configuration")
                if version > FORMAT_VERSION:
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
                f"dtype={self.activation_dtype.name}, seed={self.seed})")


class _Loop:
    """One ``fit``'s training loop: steps, epoch ends, checkpoints and Ctrl-C.

    Everything that changes from step to step and must survive a restart is
    in ``state`` (a :class:`~fastact.nn.checkpoint.TrainState`), the model's
    parameters and the optimiser; the loop keeps only reusable buffers.
    """

    def __init__(self, model, opt, rng, state, run, X_train, y_train, X_val, y_val, epochs,
                 steps, batch_size, shuffle, progress, on_epoch_end, checkpoint,
                 checkpoint_every, take=np.take):
        self.model, self.opt, self.rng, self.state = model, opt, rng, state
        self.settings = run
        self.X_train, self.y_train, self.X_val, self.y_val = X_train, y_train, X_val, y_val
        self.epochs, self.steps, self.batch_size, self.shuffle = epochs, steps, batch_size, shuffle
        self.progress, self.on_epoch_end = progress, on_epoch_end
        self.checkpoint, self.checkpoint_every = checkpoint, checkpoint_every
        # np.take, or a streamed fit's block reader (fastact/nn/_batches.py)
        self.take = take

    def save(self):
        if self.checkpoint is not None:
            _ckpt.save_checkpoint(self.checkpoint, self.model.named_parameters(), self.opt,
                                  self.state, self.settings)

    def _check_weights(self):
        # The loss check catches most divergence; this catches weights that
        # overflowed in the optimiser step after the last finite loss, so
        # neither a checkpoint nor the final model holds NaN.
        if not np.isfinite(self.model._flat_params).all():
            state = self.state
            raise FloatingPointError(
                f"training diverged: the weights became NaN or infinite at epoch "
                f"{state.epoch + 1}, step {state.step}; try a smaller learning rate")

    def _stop(self, bar):
        if bar is not None:
            bar.close()
        self._check_weights()
        self.save()
        state = self.state
        where = f"epoch {state.epoch + 1}, step {state.step}/{self.steps}"
        if state.step == 0:
            where = f"the end of epoch {state.epoch}"
        kept = (f"checkpoint written to {self.checkpoint}" if self.checkpoint is not None
                else "no checkpoint written")
        raise TrainingInterrupted(f"training interrupted at {where}; {kept}",
                                  state.epoch + 1, state.step, self.checkpoint)

    def run(self, interrupt):
        model, state, rng = self.model, self.state, self.rng
        X_train, y_train, X_val, y_val = self.X_train, self.y_train, self.X_val, self.y_val
        epochs, steps, batch_size = self.epochs, self.steps, self.batch_size
        progress, every = self.progress, self.checkpoint_every
        n = X_train.shape[0]
        xb_full = np.empty((min(batch_size, n), X_train.shape[1]), dtype=model.dtype)
        yb_full = np.empty(min(batch_size, n), dtype=np.int32)
        order = np.arange(n)
        forward, backward = model._forward, model._backward
        loss_step = model.loss_fn.forward_backward
        opt_step = self.opt.step
        take = self.take
        history = state.history
        tick = max(1, steps // 100)
        done = state.epoch * steps + state.step  # steps taken over all epochs
        while state.epoch < epochs:
            epoch = state.epoch
            bar = progress(steps, f"epoch {epoch + 1}/{epochs}") if progress else None
            if bar is not None and state.step:
                bar.update(state.step)
            t0 = time.perf_counter()
            time_before = state.epoch_time
            # Drawn even when resuming after the epoch's last step, so the
            # generator ends where an uninterrupted run leaves it.
            perm = rng.permutation(n) if self.shuffle else order
            for s in range(state.step, steps):
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
                state.loss_sum += loss * m
                state.correct += c
                state.step = s + 1
                done += 1
                if bar is not None and (s + 1) % tick == 0:
                    bar.update(tick)
                if interrupt.requested or (every is not None and done % every == 0):
                    state.epoch_time = time_before + (time.perf_counter() - t0)
                    if interrupt.requested:
                        self._stop(bar)
                    self._check_weights()
                    self.save()
            state.epoch_time = time_before + (time.perf_counter() - t0)
            if bar is not None:
                bar.update(steps - (steps // tick) * tick)
                bar.close()
            self._check_weights()
            logs = {"loss": state.loss_sum / n, "accuracy": state.correct / n,
                    "epoch_time": state.epoch_time}
            if X_val is not None:
                t1 = time.perf_counter()
                val = model._evaluate(X_val, y_val)  # (under the fit's BLAS limit too)
                logs.update(val_loss=val["loss"], val_accuracy=val["accuracy"],
                            eval_time=time.perf_counter() - t1)
            for k, v in logs.items():
                history[k].append(v)
            state.next_epoch(rng.bit_generator.state)
            if every is None or state.epoch == epochs:
                self.save()
            if self.on_epoch_end is not None:
                self.on_epoch_end(epoch, logs)
            if interrupt.requested and state.epoch < epochs:
                self._stop(None)
