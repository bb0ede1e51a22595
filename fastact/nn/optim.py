"""Optimisers: SGD with momentum and Adam, with PyTorch's defaults and maths.

An optimiser updates a list of ``(param, grad)`` array pairs in place.  The
model packs all its parameters into one flat array (and the gradients into
another), so a step is a single fused pass over memory when the compiled
helper is built; otherwise it falls back to in-place NumPy operations.
"""

import math

import numpy as np

from . import layers as _layers

__all__ = ["Optimizer", "SGD", "Adam", "make_optimizer"]


def _flat(a):
    flat = a.reshape(-1)
    if not np.shares_memory(flat, a):  # pragma: no cover - params are contiguous
        raise ValueError("optimiser parameters must be contiguous arrays")
    return flat


class Optimizer:
    """Base class; ``pairs`` is a list of (param, grad) arrays updated in place.

    Parameters
    ----------
    pairs : iterable of (ndarray, ndarray)
        Each parameter with its gradient: contiguous arrays of one shape
        and floating dtype, such as ``MLP.parameter_pairs()``.  The
        optimiser keeps flat views of them (no copies): :meth:`step`
        writes the parameters in place and reads the gradients as they are
        at that moment.
    lr : float
        Learning rate, finite and >= 0.

    Attributes
    ----------
    pairs : list of (ndarray, ndarray)
        The flat (1-D) views of the parameters and gradients.
    lr : float
    steps : int
        Steps taken so far.

    Raises
    ------
    ValueError
        A gradient differs from its parameter in shape or dtype, or ``lr``
        is negative or not finite.
    """

    def __init__(self, pairs, lr):
        pairs = [(_flat(p), _flat(g)) for p, g in pairs]
        for p, g in pairs:
            if p.shape != g.shape or p.dtype != g.dtype:
                raise ValueError("each parameter needs a gradient of the same shape and dtype")
        self.pairs = pairs
        lr = float(lr)
        if not (lr >= 0 and math.isfinite(lr)):
            raise ValueError(f"learning rate must be a non-negative number, got {lr!r}")
        self.lr = lr
        self.steps = 0

    def step(self):  # pragma: no cover - abstract
        """Update every parameter in place from its current gradient.

        One optimisation step: the parameters and the optimiser's own
        buffers are overwritten and :attr:`steps` grows by one; the
        gradients are only read.  Returns None.
        """
        raise NotImplementedError

    # Names of the attributes that hold one state array per parameter pair,
    # and of the hyperparameters a resumed run must share; subclasses extend.
    _state_lists = ()
    _hyperparameters = ("lr",)

    def hyperparameters(self):
        """The settings that define the update, JSON-friendly (for checkpoints).

        Returns
        -------
        dict
            ``"type"``: the class name, then each hyperparameter by name
            (``lr``, and e.g. ``momentum`` or ``betas``; tuples as lists).
            A resumed run must match it.
        """
        return {"type": type(self).__name__,
                **{name: _jsonable(getattr(self, name)) for name in self._hyperparameters}}

    def state_dict(self):
        """Everything that changes while training: ``{"steps": int, "arrays": {name: array}}``.

        The arrays are the optimiser's own buffers (not copies): write them
        out before the next :meth:`step`.

        Returns
        -------
        dict
            ``"steps"``: the step count; ``"arrays"``: the buffers, keyed
            ``"<attribute>.<pair index>"`` (``"buffers.0"`` for SGD,
            ``"exp_avg.0"`` and ``"exp_avg_sq.0"`` for Adam), each of its
            parameter's shape and dtype.
        """
        arrays = {f"{name}.{i}": buf
                  for name in self._state_lists
                  for i, buf in enumerate(getattr(self, name))}
        return {"steps": self.steps, "arrays": arrays}

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` returned, copying into the existing buffers.

        Everything is checked before anything is copied, so a refused state
        leaves the optimiser unchanged.

        Parameters
        ----------
        state : dict
            ``{"steps": int, "arrays": {name: array}}`` with exactly the
            names of :meth:`state_dict`, each array of the same shape and
            dtype as the buffer it replaces.  The arrays are copied, not
            kept.

        Raises
        ------
        ValueError
            The step count is not a non-negative integer, names are missing
            or unexpected, or an array's shape or dtype differs.
        KeyError
            ``state`` lacks ``"steps"`` or ``"arrays"``.
        """
        steps = state["steps"]
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"optimizer step count must be a non-negative integer, got {steps!r}")
        arrays = state["arrays"]
        expected = {f"{name}.{i}": buf
                    for name in self._state_lists
                    for i, buf in enumerate(getattr(self, name))}
        missing = sorted(set(expected) - set(arrays))
        extra = sorted(set(arrays) - set(expected))
        if missing or extra:
            raise ValueError(f"optimizer state does not match {type(self).__name__}: "
                             f"missing {missing}, unexpected {extra}")
        for key, buf in expected.items():
            stored = np.asarray(arrays[key])
            if stored.shape != buf.shape or stored.dtype != buf.dtype:
                raise ValueError(f"optimizer state {key} has shape {stored.shape} and dtype "
                                 f"{stored.dtype}, expected {buf.shape} and {buf.dtype}")
        for key, buf in expected.items():
            buf[...] = arrays[key]
        self.steps = int(steps)


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    Same update as ``torch.optim.SGD``: ``g += weight_decay * p``;
    ``buf = momentum * buf + (1 - dampening) * g`` (``buf = g`` on the first
    step); ``p -= lr * (g + momentum * buf if nesterov else buf)``.
    PyTorch's defaults: lr=1e-3, momentum=0, dampening=0, weight_decay=0.

    Parameters
    ----------
    pairs : iterable of (ndarray, ndarray)
        See :class:`Optimizer`.
    lr : float
    momentum : float
        >= 0; 0 is plain SGD.
    dampening : float
    weight_decay : float
        L2 penalty added to the gradient.
    nesterov : bool
        Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).

    Attributes
    ----------
    buffers : list of ndarray
        The momentum buffer of each pair (untouched when ``momentum`` is 0).

    Raises
    ------
    ValueError
        An argument out of range (see above and :class:`Optimizer`).
    """

    def __init__(self, pairs, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        super().__init__(pairs, lr)
        if momentum < 0:
            raise ValueError(f"momentum must be >= 0, got {momentum}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires momentum > 0 and dampening = 0")
        self.momentum, self.dampening = float(momentum), float(dampening)
        self.weight_decay, self.nesterov = float(weight_decay), bool(nesterov)
        self.buffers = [np.zeros_like(p) for p, _ in self.pairs]

    _state_lists = ("buffers",)
    _hyperparameters = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def step(self):
        first = self.steps == 0
        self.steps += 1
        for (p, g), buf in zip(self.pairs, self.buffers):
            if _layers.fused_available():
                _layers._fused.sgd_update(
                    p, g, buf, self.lr, self.momentum, self.dampening,
                    self.weight_decay, self.nesterov, first,
                )
                continue
            d = g + self.weight_decay * p if self.weight_decay else g.copy()
            if self.momentum:
                if first:
                    buf[...] = d
                else:
                    buf *= self.momentum
                    buf += (1 - self.dampening) * d
                if self.nesterov:
                    d += self.momentum * buf
                else:
                    d = buf
            p -= self.lr * d


class Adam(Optimizer):
    """Adam as in ``torch.optim.Adam`` (L2 ``weight_decay``, not AdamW).

    Defaults are PyTorch's: lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
    weight_decay=0.  Moments smaller than the smallest normal float are
    flushed to zero (they would otherwise slow every step down once ReLU
    units die and their moments decay into subnormals).

    Parameters
    ----------
    pairs : iterable of (ndarray, ndarray)
        See :class:`Optimizer`.
    lr : float
    betas : (float, float)
        Decay rates of the first and second moment estimates, each in
        [0, 1).
    eps : float
        >= 0, added to the denominator.
    weight_decay : float
        L2 penalty added to the gradient.

    Attributes
    ----------
    exp_avg, exp_avg_sq : list of ndarray
        The first and second moment estimates of each pair.

    Raises
    ------
    ValueError
        An argument out of range (see above and :class:`Optimizer`).
    """

    def __init__(self, pairs, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(pairs, lr)
        b1, b2 = (float(b) for b in betas)
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"betas must lie in [0, 1), got {betas}")
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        self.betas, self.eps, self.weight_decay = (b1, b2), float(eps), float(weight_decay)
        self.exp_avg = [np.zeros_like(p) for p, _ in self.pairs]
        self.exp_avg_sq = [np.zeros_like(p) for p, _ in self.pairs]

    _state_lists = ("exp_avg", "exp_avg_sq")
    _hyperparameters = ("lr", "betas", "eps", "weight_decay")

    def step(self):
        self.steps += 1
        b1, b2 = self.betas
        bc1 = 1.0 - b1 ** self.steps
        bc2 = 1.0 - b2 ** self.steps
        for (p, g), m, v in zip(self.pairs, self.exp_avg, self.exp_avg_sq):
            if _layers.fused_available():
                _layers._fused.adam_update(
                    p, g, m, v, self.lr, b1, b2, self.eps, bc1, bc2, self.weight_decay
                )
                continue
            d = g + self.weight_decay * p if self.weight_decay else g
            m *= b1
            m += (1 - b1) * d
            v *= b2
            v += (1 - b2) * (d * d)
            tiny = np.finfo(p.dtype).tiny
            m[np.abs(m) < tiny] = 0
            v[v < tiny] = 0
            denom = np.sqrt(v) / math.sqrt(bc2) + self.eps
            p -= (self.lr / bc1) * (m / denom)


def make_optimizer(name, pairs, lr=1e-3, momentum=0.0, weight_decay=0.0):
    """``"adam"`` or ``"sgd"`` (with ``momentum``) over ``pairs``.

    Parameters
    ----------
    name : str
        ``"adam"`` or ``"sgd"``; case and surrounding spaces are ignored.
    pairs : iterable of (ndarray, ndarray)
        See :class:`Optimizer`.
    lr : float
    momentum : float
        SGD's momentum; Adam ignores it.
    weight_decay : float

    Returns
    -------
    Optimizer
        A new :class:`Adam` (PyTorch's default betas and eps) or
        :class:`SGD` (no dampening, no Nesterov).

    Raises
    ------
    ValueError
        Unknown ``name``, or an argument the optimiser refuses.
    """
    key = str(name).strip().lower()
    if key == "adam":
        return Adam(pairs, lr=lr, weight_decay=weight_decay)
    if key == "sgd":
        return SGD(pairs, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose 'adam' or 'sgd'")
