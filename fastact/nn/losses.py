"""Softmax cross-entropy from logits (numerically stable)."""

import numpy as np

from . import layers as _layers

__all__ = ["SoftmaxCrossEntropy", "log_softmax"]


def log_softmax(logits):
    """Row-wise log-softmax, shifted by each row's maximum (no overflow).

    Parameters
    ----------
    logits : array_like of shape (n, classes)
        ``classes`` at least 1.

    Returns
    -------
    ndarray of shape (n, classes)
        ``logits - logsumexp(logits, axis=1)``, a new array of the floating
        dtype of ``logits`` (float64 for integer logits).
    """
    logits = np.asarray(logits)
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) against integer class labels.

    ``forward_backward(logits, labels)`` returns ``(loss, correct, grad)``:
    the mean loss, the number of rows whose largest logit is the label, and
    the gradient of the mean loss with respect to the logits, written into a
    reused buffer.  Every row is shifted by its maximum before
    exponentiating, so large logits neither overflow nor lose the loss.
    Labels are trusted here (the model checks them once per ``fit``).

    Parameters
    ----------
    dtype : float32 or float64
        The dtype of the logits and of the gradient.
    """

    def __init__(self, dtype=np.float32):
        self.dtype = np.dtype(dtype)
        self._buf = _layers._Buffers(self.dtype)
        self._empty = np.zeros(0, dtype=self.dtype)

    def forward_backward(self, logits, labels):
        """Mean loss, correct count and gradient of a batch, in one pass.

        Parameters
        ----------
        logits : ndarray of shape (n, classes)
            C-contiguous, of the loss's dtype; not modified.
        labels : ndarray of shape (n,)
            Class indices in ``0..classes-1``, C-contiguous int32; a label
            out of range is a ValueError.

        Returns
        -------
        loss : float
            Mean cross-entropy (natural logarithm), summed in float64.
        correct : int
            Rows whose largest logit (the first, on ties) is the label.
        grad : ndarray of shape (n, classes)
            Gradient of the mean loss with respect to ``logits``, of the
            loss's dtype: ``(softmax(logits) - onehot(labels)) / n``.  A view
            of a work buffer, overwritten by the next call.  The compiled
            helper sets the entries below the smallest normal number to zero.
        """
        n, c = logits.shape
        grad = self._buf.get("grad", n, c)
        if _layers.fused_available():
            loss, correct = _layers._fused.softmax_cross_entropy(
                logits, labels, grad, self._empty, self._empty
            )
            return loss, correct, grad
        _check_labels(labels, c)
        rows = np.arange(n)
        shift = self._buf.get("shift", n, 1)
        np.max(logits, axis=1, keepdims=True, out=shift)
        correct = int(np.count_nonzero(np.argmax(logits, axis=1) == labels))
        np.subtract(logits, shift, out=grad)
        picked = grad[rows, labels]
        np.exp(grad, out=grad)
        total = self._buf.get("total", n, 1)
        np.sum(grad, axis=1, keepdims=True, out=total)
        loss = float(np.mean(np.log(total[:, 0], dtype=np.float64) - picked))
        np.divide(grad, total, out=grad)
        grad[rows, labels] -= 1
        grad *= 1.0 / n
        return loss, correct, grad

    def loss(self, logits, labels):
        """Mean loss only (no gradient kept); any batch size.

        Parameters
        ----------
        logits : array_like of shape (n, classes)
            Converted to float64 (a copy; the argument is not modified).
        labels : array_like of int, shape (n,)
            Class indices in ``0..classes-1``; a label out of range is a
            ValueError.

        Returns
        -------
        float
            Mean cross-entropy (natural logarithm), computed in float64.
        """
        logp = log_softmax(np.asarray(logits, dtype=np.float64))
        labels = np.asarray(labels)
        _check_labels(labels, logp.shape[1])
        return float(-np.mean(logp[np.arange(len(labels)), labels]))


def _check_labels(labels, classes):
    """ValueError for a label outside 0..classes-1 (NumPy would wrap a negative one)."""
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"labels must be class indices in 0..{classes - 1}, got values from "
                         f"{labels.min()} to {labels.max()}")
