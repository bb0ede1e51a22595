"""fastact.nn.MLPClassifier: scikit-learn's estimator checks, pipelines, grid search."""

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import make_classification  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastact.nn import MLP, MLPClassifier  # noqa: E402

# Checks this estimator is known not to pass, and why.  scikit-learn reports
# them as xfail; if one starts passing it is reported as XPASS.
EXPECTED_FAILED_CHECKS = {}


def _small(**params):
    """A quick instance for the checks: small, few epochs, a larger step."""
    base = dict(hidden_layer_sizes=(16,), epochs=5, batch_size=16, learning_rate=1e-2,
                random_state=0)
    base.update(params)
    return MLPClassifier(**base)


@parametrize_with_checks([_small(), _small(activation="gelu", dtype="float64")],
                         expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_import_fastact_nn_does_not_import_sklearn():
    code = ("import sys, fastact.nn\n"
            "assert 'sklearn' not in sys.modules\n"
            "fastact.nn.MLPClassifier\n"
            "assert 'sklearn' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def _data(n=240, seed=0):
    return make_classification(n_samples=n, n_features=8, n_informative=5, n_classes=3,
                               n_clusters_per_class=1, random_state=seed)


def test_fit_matches_the_mlp_it_wraps():
    X, y = _data()
    labels = np.array(["ant", "bee", "cat"])[y]
    clf = _small(activation="prelu").fit(X, labels)
    assert list(clf.classes_) == ["ant", "bee", "cat"]
    assert clf.n_features_in_ == 8 and clf.n_iter_ == 5 and len(clf.loss_curve_) == 5
    assert isinstance(clf.model_, MLP) and clf.model_.sizes == (8, 16, 3)
    proba = clf.predict_proba(X)
    assert proba.shape == (240, 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[np.argmax(proba, axis=1)])
    assert clf.score(X, labels) > 0.8
    # The same random_state trains the same network.
    again = _small(activation="prelu").fit(X, labels)
    np.testing.assert_array_equal(again.model_.parameter_pairs()[0][0],
                                  clf.model_.parameter_pairs()[0][0])


def test_partial_fit_continues_and_needs_classes():
    X, y = _data()
    clf = _small()
    with pytest.raises(ValueError, match="classes must be given"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:120], y[:120], classes=[0, 1, 2])
    first = clf.loss_curve_[-1]
    for _ in range(6):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == 7 and clf.loss_curve_[-1] < first
    with pytest.raises(ValueError, match="not in classes_"):
        clf.partial_fit(X[:5], np.array([0, 1, 2, 5, 1]))
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :4], y)


def test_one_class_is_refused():
    with pytest.raises(ValueError, match="at least 2 classes"):
        _small().fit(np.ones((5, 2)), np.zeros(5))


def test_in_a_pipeline_with_a_scaler():
    X, y = _data()
    X = X * 1000.0 + 50.0  # far from unit scale: the scaler matters
    pipe = make_pipeline(StandardScaler(), _small(epochs=10))
    pipe.fit(X[:180], y[:180])
    assert pipe.score(X[180:], y[180:]) > 0.75
    assert pipe.predict_proba(X[180:]).shape == (60, 3)


def test_grid_search_over_the_activation():
    X, y = _data()
    search = GridSearchCV(_small(epochs=4), {"activation": ["relu", "gelu", "prelu"]}, cv=3)
    search.fit(X, y)
    assert search.best_params_["activation"] in ("relu", "gelu", "prelu")
    assert len(search.cv_results_["mean_test_score"]) == 3
    assert search.best_estimator_.activation == search.best_params_["activation"]
    assert search.score(X, y) > 0.7
