"""``MLPClassifier``: fastact's MLP as a scikit-learn estimator.

This is the only module of fastact that imports scikit-learn (the
``fastact[sklearn]`` extra); :mod:`fastact.nn` loads it on first use of
``fastact.nn.MLPClassifier``.
"""

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .model import MLP
from .optim import make_optimizer

__all__ = ["MLPClassifier"]


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """A multi-layer perceptron classifier trained with fastact's kernels.

    A scikit-learn estimator over :class:`fastact.nn.MLP`: it works in
    pipelines, grid searches and cross-validation.  Labels may be any
    values (``classes_`` holds them sorted); features are cast to ``dtype``.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (100,)
        Widths of the hidden layers.
    activation : {"relu", "leaky_relu", "prelu", "gelu", "gelu_tanh"}, default "relu"
        The activation after every hidden layer.
    epochs : int, default 10
        Passes over the data in ``fit`` (``partial_fit`` makes one).
    batch_size : int, default 32
    optimizer : {"adam", "sgd"}, default "adam"
    learning_rate : float, default 1e-3
    momentum : float, default 0.0
        SGD's momentum.
    weight_decay : float, default 0.0
    negative_slope : float, default 0.01
        Leaky ReLU's slope.
    prelu_init : float, default 0.25
        PReLU's initial slope.
    dtype : {"float32", "float64"}, default "float32"
        The precision of the weights and of the computation.
    shuffle : bool, default True
        Shuffle the samples every epoch.
    random_state : int, RandomState instance or None, default None
        Seeds the initial weights and the batch order; an int makes ``fit``
        reproducible.

    Attributes
    ----------
    classes_ : ndarray
        The class labels seen in ``fit`` (or given to the first ``partial_fit``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X has string column names (a pandas DataFrame).
    model_ : fastact.nn.MLP
        The trained network.
    loss_curve_ : list of float
        The mean training loss of every epoch so far.
    n_iter_ : int
        The number of epochs trained.
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, epochs=10,
                 batch_size=32, optimizer="adam", learning_rate=1e-3, momentum=0.0,
                 weight_decay=0.0, negative_slope=0.01, prelu_init=0.25, dtype="float32",
                 shuffle=True, random_state=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.negative_slope = negative_slope
        self.prelu_init = prelu_init
        self.dtype = dtype
        self.shuffle = shuffle
        self.random_state = random_state

    # ------------------------------------------------------------------

    def _start(self, X, classes):
        """Build the network, its optimiser and its batch-order generator."""
        self.classes_ = classes
        if classes.shape[0] < 2:
            raise ValueError(
                f"MLPClassifier needs samples of at least 2 classes; got 1 class ({classes[0]!r})"
            )
        hidden = self.hidden_layer_sizes
        hidden = (hidden,) if np.isscalar(hidden) else tuple(hidden)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        self.model_ = MLP((X.shape[1], *hidden, classes.shape[0]), activation=self.activation,
                          negative_slope=self.negative_slope, prelu_init=self.prelu_init,
                          dtype=self.dtype, seed=seed)
        self._optimizer = make_optimizer(self.optimizer, self.model_.parameter_pairs(),
                                         lr=self.learning_rate, momentum=self.momentum,
                                         weight_decay=self.weight_decay)
        self._batch_rng = np.random.default_rng([seed, 1])
        self.loss_curve_ = []
        self.n_iter_ = 0

    def _train(self, X, y_encoded, epochs):
        history = self.model_.fit(
            X, y_encoded, epochs=epochs, batch_size=self.batch_size, validation_split=0.0,
            optimizer=self._optimizer, shuffle=self.shuffle, seed=self._batch_rng)
        self.loss_curve_.extend(history.get("loss", []))
        self.n_iter_ += epochs
        return self

    def _validate(self, X, y="no_validation", reset=True):
        if isinstance(y, str) and y == "no_validation":  # scikit-learn's marker: X only
            return validate_data(self, X, reset=reset, dtype=[np.float64, np.float32])
        X, y = validate_data(self, X, y, reset=reset, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        return X, y

    def fit(self, X, y):
        """Train a new network on (X, y) for ``epochs`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels, any values; at least two distinct ones.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            X or y is not valid (scikit-learn's checks), or y holds a single
            class.
        """
        X, y = self._validate(X, y)
        classes, y_encoded = np.unique(y, return_inverse=True)
        self._start(X, classes)
        return self._train(X, y_encoded, self.epochs)

    def partial_fit(self, X, y, classes=None):
        """One epoch on (X, y), continuing the current network and optimiser.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like, optional
            Every class label; required on the first call (y may hold only
            some of them), ignored later.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            ``classes`` is missing on the first call, y holds a label not in
            ``classes_``, or X or y is not valid.
        """
        first = not hasattr(self, "model_")
        X, y = self._validate(X, y, reset=first)
        if first:
            if classes is None:
                raise ValueError("classes must be given on the first call to partial_fit")
            self._start(X, np.unique(np.asarray(classes)))
        y_encoded = np.searchsorted(self.classes_, y)
        y_encoded = np.minimum(y_encoded, self.classes_.shape[0] - 1)
        unknown = self.classes_[y_encoded] != y
        if unknown.any():
            raise ValueError(
                f"y holds labels not in classes_: {np.unique(y[unknown]).tolist()}"
            )
        return self._train(X, y_encoded, 1)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            With the ``n_features_in_`` features seen in ``fit``.

        Returns
        -------
        ndarray of float64, shape (n_samples, n_classes)
            Computed in the model's ``dtype``, then widened; rows sum to 1.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Neither ``fit`` nor ``partial_fit`` has been called.
        ValueError
            X is not numeric, holds NaN or infinities, or has another
            number of features than in ``fit``.
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        return self.model_.predict_proba(X).astype(np.float64)

    def predict(self, X):
        """The most probable class label of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            With the ``n_features_in_`` features seen in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels taken from ``classes_`` (same dtype).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Neither ``fit`` nor ``partial_fit`` has been called.
        ValueError
            X is not numeric, holds NaN or infinities, or has another
            number of features than in ``fit``.
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        return self.classes_[self.model_.predict(X)]
