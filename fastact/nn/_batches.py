"""The MLP on dask arrays: block-by-block inference and streamed training batches.

Nothing here imports dask until a dask array is actually passed, so
``import fastact.nn`` works without it.

Streaming order (``MLP.fit`` on dask arrays, documented in docs/dask.md):
the samples are read one block (chunk along the sample axis) at a time.
Each epoch, with ``shuffle=True``, draws from the fit's generator, in this
order: a permutation of the non-empty blocks (not drawn when there is only
one), then a permutation of the rows of each block, in the order the blocks
will be visited.  The epoch's sample order is those blocks' shuffled rows one
after another, and batches are cut from it every ``batch_size`` samples
regardless of block boundaries: a batch that straddles a boundary holds the
last rows of one block and the first rows of the next.  With
``shuffle=False`` the samples are read in storage order.  At most two blocks
(or, with blocks smaller than a batch, the blocks of one batch) are in memory
at a time.  With a single block the order is exactly the in-memory ``fit``'s,
so the same seed gives bit-identical weights.
"""

import copy
import sys
from collections import OrderedDict

import numpy as np

__all__ = ["is_dask", "check_x", "check_y", "predict", "evaluate", "BlockReader"]


def is_dask(value):
    """True for a dask array (never imports dask: if it is not loaded, nothing is one)."""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(value, module.Array)


def _known(n, name):
    if isinstance(n, float):  # NaN: dask does not know the chunk sizes
        raise ValueError(f"{name} has chunks of unknown size: call {name}.compute_chunk_sizes() first")
    return n


def check_x(model, X, name="X"):
    """The call-time checks of ``MLP._check_x`` on a dask array, which is
    returned with the features in one chunk.  Values (NaN, infinities) are
    checked as each block is read."""
    if X.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold numbers, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples, features), got shape {X.shape}")
    if X.shape[1] != model.sizes[0]:
        raise ValueError(
            f"{name} has {X.shape[1]} features per sample but the model expects {model.sizes[0]}"
        )
    if _known(X.shape[0], name) == 0:
        raise ValueError(f"{name} holds no samples")
    return X if X.numblocks[1] == 1 else X.rechunk({1: -1})


def check_y(model, y, n, name="y"):
    """The call-time checks of ``MLP._check_y`` on a dask array (label values
    are checked as each block is read)."""
    if y.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D class labels (one integer per sample), got shape {y.shape}"
        )
    if y.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if _known(y.shape[0], name) != n:
        raise ValueError(f"X holds {n} samples but {name} holds {y.shape[0]} labels")
    return y


def _block_x(block, dtype, start, name="X"):
    """One block as a contiguous array of the model dtype, its values checked;
    a bad value is reported by its sample number in the whole array."""
    with np.errstate(over="ignore", invalid="ignore"):
        block = np.ascontiguousarray(block, dtype=dtype)
    finite = np.isfinite(block)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        count = int(finite.size - np.count_nonzero(finite))
        raise ValueError(
            f"{name} contains {count} NaN or infinite value(s) (first at sample "
            f"{start + row}, feature {col}) or values too large for {dtype}"
        )
    return block


def _aligned(X, y):
    """(X, y) as dask arrays whose sample-axis chunks agree; a NumPy side is
    split like the dask one."""
    import dask.array as da

    if not is_dask(X):
        X = da.from_array(np.asarray(X), chunks=(y.chunks[0], -1))
    if not is_dask(y):
        y = da.from_array(np.asarray(y), chunks=(X.chunks[0],))
    elif y.chunks[0] != X.chunks[0]:
        y = y.rechunk((X.chunks[0],))
    return X, y


# ------------------------------------------------------------- inference --

def _predict_block(block, model, batch_size, proba, block_info=None):
    start = block_info[0]["array-location"][0][0] if block_info else 0
    if block.shape[0] == 0:
        shape = (0, model.sizes[-1]) if proba else (0,)
        return np.empty(shape, model.dtype if proba else np.int64)
    block = _block_x(block, model.dtype, start)
    model = copy.deepcopy(model)  # layers keep buffers: one model per concurrent block
    return model.predict_proba(block, batch_size) if proba else model.predict(block, batch_size)


def predict(model, X, batch_size, proba):
    """Lazy ``predict`` / ``predict_proba`` of a checked dask X, block by block,
    with the model's weights as they are now (a copy goes into the graph)."""
    import dask.array as da

    snapshot = copy.deepcopy(model)
    if proba:
        dtype, chunks, drop = model.dtype, (X.chunks[0], (model.sizes[-1],)), []
    else:
        dtype, chunks, drop = np.dtype(np.int64), (X.chunks[0],), [1]
    return da.map_blocks(_predict_block, X, model=snapshot, batch_size=batch_size, proba=proba,
                         dtype=dtype, chunks=chunks, drop_axis=drop,
                         meta=np.empty((0,) * len(chunks), dtype),
                         token="fastact-mlp-predict-proba" if proba else "fastact-mlp-predict")


def _evaluate_block(xb, yb, model, batch_size, block_info=None):
    n = xb.shape[0]
    if n == 0:
        return np.zeros((1, 2))
    start = block_info[0]["array-location"][0][0] if block_info else 0
    xb = _block_x(xb, model.dtype, start)
    yb = model._check_y(yb, n)
    model = copy.deepcopy(model)  # layers keep buffers: one model per concurrent block
    result = model._evaluate(xb, yb, batch_size)
    return np.array([[result["loss"] * n, round(result["accuracy"] * n)]], dtype=np.float64)


def evaluate(model, X, y, batch_size):
    """``MLP.evaluate`` over dask arrays: one partial sum per block, computed
    now with the current dask scheduler."""
    import dask.array as da

    X, y = _aligned(X, y)
    parts = da.blockwise(_evaluate_block, "ij", X, "ij", y, "i", model=copy.deepcopy(model),
                         batch_size=batch_size, adjust_chunks={"i": 1, "j": 2},
                         dtype=np.float64, meta=np.empty((0, 0), np.float64),
                         token="fastact-mlp-evaluate")
    total, correct = parts.sum(axis=0).compute()
    n = X.shape[0]
    return {"loss": float(total) / n, "accuracy": int(correct) / n}


# -------------------------------------------------------------- training --

class _BlockOrder:
    """Stands in for the fit's generator: ``permutation(n)`` gives the epoch's
    block-wise order (see the module docstring)."""

    def __init__(self, reader, rng):
        self.reader, self.rng = reader, rng

    def permutation(self, n):
        return self.reader.epoch_order(self.rng, n)

    def __getattr__(self, name):  # anything else (bit_generator, ...) is the generator's
        return getattr(self.rng, name)


class BlockReader:
    """Training batches gathered from a dask (X, y) one block at a time.

    Parameters
    ----------
    X, y : dask or NumPy arrays, at least one of them dask
        Checked by ``check_x`` / ``check_y``; y is split like X.
    dtype : numpy dtype
        The model's dtype, which X's blocks are converted to.
    check_y : callable, optional
        ``check_y(labels, n)`` applied to each block of labels (the model's
        ``_check_y``); by default the labels are only converted to int32.
    """

    def __init__(self, X, y, dtype, check_y=None):
        self.X, self.y = _aligned(X, y)
        self.dtype = np.dtype(dtype)
        self.check_y = check_y
        sizes = np.array([_known(s, "X") for s in self.X.chunks[0]], dtype=np.int64)
        self.sizes = sizes
        self.starts = np.concatenate([[0], np.cumsum(sizes)])
        self._cache = OrderedDict()

    @property
    def loaded(self):
        """How many blocks are held in memory now."""
        return len(self._cache)

    def permutation_source(self, rng):
        """An object whose ``permutation(n)`` draws epoch orders from ``rng``."""
        return _BlockOrder(self, rng)

    def epoch_order(self, rng, n):
        if n != self.starts[-1]:  # pragma: no cover - fit passes the sample count
            raise ValueError(f"asked for an order of {n} samples, the data holds {self.starts[-1]}")
        blocks = np.flatnonzero(self.sizes)
        if blocks.size > 1:
            blocks = blocks[rng.permutation(blocks.size)]
        if blocks.size == 0:
            return np.empty(0, np.int64)
        return np.concatenate([self.starts[b] + rng.permutation(self.sizes[b]) for b in blocks])

    def _load(self, b):
        import dask

        if b in self._cache:
            self._cache.move_to_end(b)
            return self._cache[b]
        xb, yb = dask.compute(self.X.blocks[b], self.y.blocks[b])
        xb = _block_x(xb, self.dtype, int(self.starts[b]))
        yb = self.check_y(yb, xb.shape[0]) if self.check_y else np.ascontiguousarray(yb, np.int32)
        self._cache[b] = (xb, yb)
        return xb, yb

    def take(self, array, idx, axis=0, out=None, mode=None):
        """``np.take(array, idx, axis=0, out=out)`` for ``array`` X or y,
        reading the blocks that hold ``idx``."""
        which = 0 if array is self.X else 1
        blocks = np.searchsorted(self.starts, idx, side="right") - 1
        first, last = blocks.min(), blocks.max()
        needed = [first] if first == last else np.unique(blocks).tolist()
        keep = max(2, len(needed))
        for b in needed:
            self._load(b)
        while len(self._cache) > keep:
            oldest = next(iter(self._cache))
            if oldest in needed:  # pragma: no cover - needed blocks are the newest
                break
            del self._cache[oldest]
        if first == last:
            return np.take(self._cache[first][which], idx - self.starts[first], axis=0, out=out)
        for b in needed:
            mask = blocks == b
            out[mask] = self._cache[b][which][idx[mask] - self.starts[b]]
        return out
