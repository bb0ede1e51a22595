"""Softmax cross-entropy from logits (numerically stable)."""

import numpy as np

from . import layers as _layers

__all__ = ["SoftmaxCrossEntropy", "log_softmax"]


def log_softmax(logits):
    """Row-wise log-softmax, shifted by each row's maximum (no overflow)."""
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
    """

    def __init__(self, dtype=np.float32):
        self.dtype = np.dtype(dtype)
        self._buf = _layers._Buffers(self.dtype)
        self._empty = np.zeros(0, dtype=self.dtype)

    def forward_backward(self, logits, labels):
        n, c = logits.shape
        grad = self._buf.get("grad", n, c)
        if _layers.fused_available():
            loss, correct = _layers._fused.softmax_cross_entropy(
                logits, labels, grad, self._empty, self._empty
            )
            return loss, correct, grad
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
        """Mean loss only (no gradient kept); any batch size."""
        logp = log_softmax(np.asarray(logits, dtype=np.float64))
        return float(-np.mean(logp[np.arange(len(labels)), labels]))
