"""Tests of the fastact.nn trainer: gradients, optimisers, persistence, errors, CLI.

Only tiny synthetic data; no test trains on a real data set.
"""

import json
import os

import numpy as np
import pytest

import fastact.nn as nn
from fastact.nn import MLP, layers, model as model_mod, optim

ACTS = ["relu", "leaky_relu", "prelu", "gelu", "gelu_tanh"]


@pytest.fixture(params=[True, False], ids=["fused", "kernels"])
def fused(request, monkeypatch):
    """Run a test through the compiled fused loops and through the plain kernels."""
    if request.param and layers._fused is None:
        pytest.skip("fastact.nn._fused is not built")
    monkeypatch.setattr(layers, "USE_FUSED", request.param)
    return request.param


def blobs(n=120, d=6, classes=3, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(classes, d))
    y = rng.integers(0, classes, size=n)
    X = centers[y] + rng.normal(size=(n, d))
    return X.astype(dtype), y


def _randomise_prelu(model, rng):
    for layer in model.layers:
        if isinstance(layer, nn.PReLU):  # slopes of both signs, not just 0.25
            layer.weight[...] = rng.uniform(-0.8, 1.2, size=layer.weight.shape)


# ----------------------------------------------------------------------------
# Gradients
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTS)
def test_gradient_check_whole_network(activation, fused):
    """Analytic gradients of every parameter of a 3-layer net vs central differences."""
    rng = np.random.default_rng(1)
    model = MLP((5, 7, 6, 4), activation, dtype=np.float64, seed=3)
    _randomise_prelu(model, rng)
    X = rng.normal(size=(9, 5))
    y = rng.integers(0, 4, size=9)
    model.compute_gradients(X, y)
    params, grads = model.parameter_pairs()[0]
    analytic = grads.copy()
    numeric = np.zeros_like(params)
    h = 1e-6
    for i in range(params.size):
        old = params[i]
        params[i] = old + h
        up = model.loss(X, y)
        params[i] = old - h
        down = model.loss(X, y)
        params[i] = old
        numeric[i] = (up - down) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)
    # the check is not vacuous (ReLU may kill a few units of so small a net)
    assert np.count_nonzero(analytic) > 0.6 * model.num_parameters


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_path_matches_kernel_path(activation, dtype, monkeypatch):
    if layers._fused is None:
        pytest.skip("fastact.nn._fused is not built")
    X, y = blobs(40, 6, 3, dtype=dtype)
    results = []
    for use in (True, False):
        monkeypatch.setattr(layers, "USE_FUSED", use)
        model = MLP((6, 10, 8, 3), activation, dtype=dtype, seed=0)
        _randomise_prelu(model, np.random.default_rng(2))
        loss = model.compute_gradients(X, y)
        results.append((loss, model.parameter_pairs()[0][1].copy(), model.predict_proba(X)))
    tol = 2e-5 if dtype == np.float32 else 1e-12
    assert results[0][0] == pytest.approx(results[1][0], rel=tol)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=tol * 50, atol=tol)
    np.testing.assert_allclose(results[0][2], results[1][2], rtol=tol, atol=tol)


def test_prelu_slopes_go_negative_and_learn(fused):
    # A target that needs negative slopes: y depends on |x|-like features.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 4)).astype(np.float32)
    y = (np.abs(X).sum(axis=1) > 3).astype(int)
    model = MLP((4, 8, 2), "prelu", seed=0)
    prelu = model.layers[1]
    prelu.weight[...] = -0.5
    loss = model.compute_gradients(X, y)
    assert np.isfinite(loss) and np.all(np.isfinite(prelu.grad_weight))
    model.fit(X, y, epochs=30, batch_size=16, validation_split=0, lr=1e-2)
    assert model.evaluate(X, y)["accuracy"] > 0.9
    assert prelu.weight.min() < 0


def test_softmax_cross_entropy_is_stable(fused):
    loss_fn = nn.SoftmaxCrossEntropy(np.float32)
    logits = np.array([[1e4, 0, -1e4], [-3e4, 3e4 + 1, 3e4]], dtype=np.float32)
    labels = np.array([0, 2], dtype=np.int32)
    loss, correct, grad = loss_fn.forward_backward(logits, labels)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx(0.5 * (0 + 1 + np.log1p(np.exp(-1))), rel=1e-5)
    assert correct == 1
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-6)
    ref = -nn.log_softmax(logits.astype(np.float64))[[0, 1], labels].mean()
    assert loss == pytest.approx(ref, rel=1e-6)


# ----------------------------------------------------------------------------
# Optimisers
# ----------------------------------------------------------------------------


def _reference_adam(p, grads, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, wd=0.0):
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        denom = np.sqrt(v) / np.sqrt(1 - b2 ** t) + eps
        p = p - lr / (1 - b1 ** t) * m / denom
    return p


@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_adam_matches_pytorch_formula(fused, wd):
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=50)
    grads = [rng.normal(size=50) for _ in range(5)]
    p, g = p0.copy(), np.zeros(50)
    opt = optim.Adam([(p, g)], lr=1e-2, weight_decay=wd)
    for gi in grads:
        g[...] = gi
        opt.step()
    np.testing.assert_allclose(p, _reference_adam(p0, grads, lr=1e-2, wd=wd), rtol=1e-12)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_matches_pytorch_formula(fused, nesterov):
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=20)
    grads = [rng.normal(size=20) for _ in range(4)]
    p, g = p0.copy(), np.zeros(20)
    opt = optim.SGD([(p, g)], lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=nesterov)
    ref, buf = p0.copy(), None
    for gi in grads:
        g[...] = gi
        opt.step()
        d = gi + 0.01 * ref
        buf = d.copy() if buf is None else 0.9 * buf + d
        ref = ref - 0.1 * (d + 0.9 * buf if nesterov else buf)
    np.testing.assert_allclose(p, ref, rtol=1e-12)


def test_adam_flushes_subnormal_moments(fused):
    p = np.ones(8, dtype=np.float32)
    g = np.zeros(8, dtype=np.float32)
    opt = optim.Adam([(p, g)])
    opt.exp_avg[0][...] = 1e-38  # the next decay makes these subnormal
    opt.exp_avg_sq[0][...] = 1e-38
    opt.step()
    assert np.all(opt.exp_avg[0] == 0) and np.all(opt.exp_avg_sq[0] == 0)


def test_fused_softmax_with_bias():
    f = layers._fused
    if f is None:
        pytest.skip("fastact.nn._fused is not built")
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 4))
    b = rng.normal(size=4)
    y = np.array([0, 1, 2, 3, 0], np.int32)
    g1, g2, gb = np.empty_like(z), np.empty_like(z), np.empty(4)
    none = np.zeros(0)
    loss1, c1 = f.softmax_cross_entropy(z, y, g1, b, gb)
    loss2, c2 = f.softmax_cross_entropy(z + b, y, g2, none, none)
    assert loss1 == pytest.approx(loss2, rel=1e-14) and c1 == c2
    np.testing.assert_allclose(g1, g2, rtol=1e-13)
    np.testing.assert_allclose(gb, g2.sum(axis=0), rtol=1e-13, atol=1e-16)


def test_fused_loops_check_lengths():
    f = layers._fused
    if f is None:
        pytest.skip("fastact.nn._fused is not built")
    a = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="differ in length"):
        f.adam_update(a, np.zeros(3, np.float32), a.copy(), a.copy(), 1e-3, .9, .999, 1e-8, 1, 1, 0)
    z = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="shape mismatch"):
        f.bias_act_forward(z, np.zeros(2, np.float32), z.copy(), 0, 0.0, np.zeros(1, np.float32))
    with pytest.raises(ValueError, match="prelu weight"):
        f.bias_act_forward(z, np.zeros(3, np.float32), z.copy(), 2, 0.0, np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="class indices in 0..2"):
        f.softmax_cross_entropy(z, np.array([0, 3], np.int32), z.copy(),
                                np.zeros(0, np.float32), np.zeros(0, np.float32))
    with pytest.raises(ValueError):  # mixed dtypes
        f.bias_add(z, np.zeros(3, np.float64))


def test_optimizer_argument_errors():
    p = np.zeros(3)
    with pytest.raises(ValueError, match="learning rate"):
        optim.Adam([(p, p.copy())], lr=-1)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([(p, p.copy())], betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="unknown optimizer"):
        optim.make_optimizer("rmsprop", [(p, p.copy())])


# ----------------------------------------------------------------------------
# Training, reproducibility, allocation
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "prelu", "gelu"])
def test_fit_learns_blobs(activation, fused):
    X, y = blobs(300, 6, 3)
    model = MLP((6, 16, 3), activation, seed=0)
    history = model.fit(X, y, epochs=5, batch_size=16, validation_split=0.2)
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy", "epoch_time",
                            "eval_time"}
    assert len(history["loss"]) == 5
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.9


def test_validation_split_takes_the_end():
    X, y = blobs(100, 6, 3)
    model = MLP((6, 4, 3), seed=0)
    h1 = model.fit(X, y, epochs=1, validation_split=0.1, seed=0)
    model2 = MLP((6, 4, 3), seed=0)
    h2 = model2.fit(X[:90], y[:90], epochs=1, validation_data=(X[90:], y[90:]), seed=0)
    assert h1["val_accuracy"] == h2["val_accuracy"]
    assert h1["loss"] == h2["loss"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_seed_makes_runs_reproducible(dtype):
    X, y = blobs(100, 6, 3, dtype=dtype)
    runs = []
    for seed in (5, 5, 6):
        model = MLP((6, 8, 3), "prelu", dtype=dtype, seed=seed)
        model.fit(X, y, epochs=2, batch_size=8)
        runs.append(model.parameter_pairs()[0][0].copy())
    assert runs[0].dtype == dtype
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_shuffle_rng_gives_fit_order(monkeypatch):
    """fit draws epoch orders as shuffle_rng(seed).permutation(n), once per epoch."""
    X, y = blobs(50, 6, 3)
    seen = []
    real_take = np.take

    def spy(a, idx, *args, **kwargs):
        if a.ndim == 1:  # the label gather
            seen.append(np.array(idx))
        return real_take(a, idx, *args, **kwargs)

    monkeypatch.setattr(np, "take", spy)
    MLP((6, 4, 3), seed=0).fit(X, y, epochs=2, batch_size=10, validation_split=0, seed=9)
    got = np.concatenate(seen)
    rng = nn.shuffle_rng(9)
    want = np.concatenate([rng.permutation(50), rng.permutation(50)])
    np.testing.assert_array_equal(got, want)


def test_training_step_reuses_its_buffers(monkeypatch):
    """After the first step every full-size step writes into the same arrays."""
    X, y = blobs(200, 6, 3)
    model = MLP((6, 8, 5, 3), "gelu", seed=0)
    calls = []
    loss_step = model.loss_fn.forward_backward

    def spy(logits, labels):
        loss, correct, grad = loss_step(logits, labels)
        if logits.shape[0] == 16:
            ptrs = [logits.ctypes.data, grad.ctypes.data, labels.ctypes.data]
            for layer in model.layers:
                ptrs += [a.ctypes.data for a in layer._buf._arrays.values()]
            calls.append(tuple(ptrs))
        return loss, correct, grad

    monkeypatch.setattr(model.loss_fn, "forward_backward", spy)
    model.fit(X, y, epochs=2, batch_size=16, validation_split=0)
    # (the backward buffers are created during the first step)
    assert len(calls) == 24 and len(set(calls[1:])) == 1


def test_fit_keeps_small_blas_products_single_threaded():
    tp = pytest.importorskip("threadpoolctl")
    X, y = blobs(64, 6, 3)
    model = MLP((6, 8, 3), seed=0)
    seen = []

    def blas_threads(epoch, logs):
        seen.append([i["num_threads"] for i in tp.threadpool_info() if i["user_api"] == "blas"])

    model.fit(X, y, epochs=1, on_epoch_end=blas_threads)
    assert all(n == 1 for n in seen[0])
    with pytest.raises(ValueError, match="blas_threads must be positive"):
        model.fit(X, y, epochs=1, blas_threads=0)


def test_float64_model_keeps_float64():
    X, y = blobs(60, 6, 3, dtype=np.float64)
    model = MLP((6, 8, 3), "gelu", dtype=np.float64, seed=0)
    model.fit(X, y, epochs=1, batch_size=8)
    assert all(p.dtype == np.float64 for _n, p in model.named_parameters())
    assert model.predict_proba(X).dtype == np.float64


# ----------------------------------------------------------------------------
# Save / load
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_round_trip_is_bit_identical(activation, dtype, tmp_path):
    X, y = blobs(80, 6, 3, dtype=dtype)
    model = MLP((6, 9, 7, 3), activation, dtype=dtype, seed=1)
    model.fit(X, y, epochs=2, batch_size=8)
    path = tmp_path / "sub" / "model.npz"
    model.save(path)
    loaded = MLP.load(path)
    assert loaded.config() == model.config()
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert np.array_equal(loaded.predict(X), model.predict(X))
    for (n1, p1), (n2, p2) in zip(model.named_parameters(), loaded.named_parameters()):
        assert n1 == n2 and p1.dtype == p2.dtype
        np.testing.assert_array_equal(p1, p2)


def test_save_writes_exactly_the_given_path(tmp_path):
    path = tmp_path / "weights.bin"
    MLP((4, 3, 2), seed=0).save(path)
    assert path.exists() and not (tmp_path / "weights.bin.npz").exists()


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        MLP.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="bad.npz"):
        MLP.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(ValueError, match="not a fastact model"):
        MLP.load(other)
    good = tmp_path / "good.npz"
    MLP((4, 3, 2), seed=0).save(good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated.npz"):
        MLP.load(truncated)


# ----------------------------------------------------------------------------
# Input errors
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "X, y, exc, match",
    [
        (np.zeros((4, 5)), [0, 1, 2, 0], ValueError, "5 features per sample but the model expects 6"),
        (np.zeros((4, 2, 3)), [0, 1, 2, 0], ValueError, "flatten images"),
        (np.zeros(6), [0], ValueError, "must be 2-D"),
        (np.zeros((4, 6)), [0, 1, 3, 0], ValueError, r"1 label\(s\) outside 0..2"),
        (np.zeros((4, 6)), [0, 1, -1, 0], ValueError, "outside 0..2"),
        (np.zeros((4, 6)), [0, 1, 2], ValueError, "4 samples but y holds 3 labels"),
        (np.zeros((4, 6)), [[0, 1, 2, 0]], ValueError, "1-D class labels"),
        (np.zeros((4, 6)), [0.5, 1, 2, 0], ValueError, "integer class labels"),
        (np.zeros((4, 6)), ["a", "b", "c", "d"], TypeError, "integer class labels"),
        (np.array([[0, 0, 0, np.nan, 0, 0]] * 4), [0, 1, 2, 0], ValueError,
         r"NaN or infinite value\(s\) \(first at sample 0, feature 3\)"),
        (np.full((4, 6), 1e300), [0, 1, 2, 0], ValueError, "too large for float32"),
        (np.zeros((0, 6)), [], ValueError, "no samples"),
    ],
)
def test_bad_inputs_give_clear_errors(X, y, exc, match):
    model = MLP((6, 4, 3), seed=0)
    with pytest.raises(exc, match=match):
        model.fit(X, y, epochs=1)


def test_bad_arguments_give_clear_errors():
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        MLP((6, 4, 3), "swish")
    with pytest.raises(ValueError, match="at least an input and an output"):
        MLP((6,))
    with pytest.raises(ValueError, match="positive"):
        MLP((6, 0, 3))
    with pytest.raises(TypeError, match="float32 or float64"):
        MLP((6, 4, 3), dtype=np.float16)
    X, y = blobs(20, 6, 3)
    model = MLP((6, 4, 3), seed=0)
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(X, y, validation_split=1.5)
    with pytest.raises(ValueError, match="batch_size must be positive"):
        model.fit(X, y, batch_size=0)
    with pytest.raises(ValueError, match="features per sample"):
        model.predict(np.zeros((2, 7)))


@pytest.mark.parametrize("batch_size, exc", [(0, ValueError), (-1, ValueError),
                                             (2.5, TypeError), (None, TypeError)])
@pytest.mark.parametrize("method", ["predict", "predict_proba", "evaluate", "loss"])
def test_inference_batch_size_is_checked(method, batch_size, exc):
    """batch_size=-1 used to run no batch at all and return np.empty's contents."""
    X, y = blobs(20, 6, 3)
    model = MLP((6, 4, 3), seed=0)
    args = (X,) if method.startswith("predict") else (X, y)
    with pytest.raises(exc, match="batch_size"):
        getattr(model, method)(*args, batch_size=batch_size)


@pytest.mark.parametrize("cls", [nn.ReLU, nn.LeakyReLU, nn.GELU])
def test_activation_layer_rejects_another_dtype(cls):
    layer = cls(dtype=np.float32)
    with pytest.raises(TypeError, match="layer of dtype float32: arrays must be float32, "
                                        "got float64"):
        layer.forward(np.ones((2, 3)))
    layer.forward(np.ones((2, 3), np.float32))
    with pytest.raises(TypeError, match="got float64"):
        layer.backward(np.ones((2, 3)))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_is_reported():
    X, y = blobs(64, 6, 3)
    model = MLP((6, 8, 3), "relu", seed=0)
    with pytest.raises(FloatingPointError, match="diverged"):
        model.fit(X * 1e18, y, epochs=3, optimizer="sgd", lr=1e30)


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------


@pytest.fixture
def tiny_idx(tmp_path):
    """A 4-file MNIST-format data set of 8x8 images in tmp_path/fashion-mnist."""
    from fastact import datasets

    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    (root / "fashion-mnist").mkdir(parents=True)
    files = datasets.get_spec("fashion-mnist").files

    def make(n):
        y = rng.integers(0, 10, size=n).astype(np.uint8)
        base = (np.arange(10)[:, None] * 25 + rng.integers(0, 20, size=(10, 64))) % 256
        x = (base[y] + rng.integers(0, 30, size=(n, 64))).clip(0, 255).astype(np.uint8)
        return x.reshape(n, 8, 8), y

    xtr, ytr = make(300)
    xte, yte = make(100)
    for role, arr in [("train_images", xtr), ("train_labels", ytr),
                      ("test_images", xte), ("test_labels", yte)]:
        datasets.write_idx(root / "fashion-mnist" / files[role], arr)
    return root


def _cli(argv):
    from fastact.cli import main

    return main(argv)


def test_cli_train_and_save(tiny_idx, tmp_path, capsys):
    out = tmp_path / "m.npz"
    rc = _cli(["train", "--data-dir", str(tiny_idx), "--no-download", "--epochs", "2",
               "--hidden", "16,8", "--activation", "gelu", "--batch-size", "16",
               "--lr", "3e-3", "--seed", "1", "--threads", "1", "--save", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "epoch 2/2" in captured.out and "val_acc" in captured.out
    assert "test accuracy" in captured.out
    model = MLP.load(out)
    assert model.sizes == (64, 16, 8, 10) and model.activation == "gelu"


def test_cli_compare_writes_table_and_plot(tiny_idx, tmp_path, capsys):
    out = tmp_path / "res"
    rc = _cli(["compare", "--data-dir", str(tiny_idx), "--no-download", "--epochs", "2",
               "--seeds", "2", "--hidden", "8", "--activations", "relu,prelu",
               "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    md = (out / "results.md").read_text()
    assert "| relu |" in md and "| prelu |" in md and "±" in md
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "results.json").read_text())
    assert len(data["runs"]["relu"]) == 2
    assert len(data["runs"]["prelu"][0]["history"]["val_accuracy"]) == 2


def test_cli_missing_dataset_is_one_clear_error(tmp_path, capsys, monkeypatch):
    from fastact import datasets

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIRS", [str(tmp_path / "nowhere")], raising=False)
    rc = _cli(["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "empty"),
               "--no-download"])
    err = capsys.readouterr().err
    assert rc != 0
    assert err.startswith("fastact train: error: data set 'mnist' not found")
    assert "Traceback" not in err


def test_cli_corrupt_idx_is_one_clear_error(tiny_idx, capsys):
    target = tiny_idx / "fashion-mnist" / "train-images-idx3-ubyte.gz"
    target.write_bytes(target.read_bytes()[:40])  # truncated
    rc = _cli(["compare", "--data-dir", str(tiny_idx), "--no-download", "--epochs", "1",
               "--seeds", "1", "--out", str(tiny_idx / "out")])
    err = capsys.readouterr().err
    assert rc != 0
    assert err.startswith("fastact compare: error:") and "train-images" in err
    assert "Traceback" not in err


def test_cli_bad_arguments(capsys):
    with pytest.raises(SystemExit) as info:
        _cli(["train", "--epochs", "0"])
    assert info.value.code == 2
    assert "positive integer" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        _cli(["compare", "--activations", "relu,swish", "--no-download"])
    assert info.value.code == 2
    assert "unknown activation(s) swish" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [-1, 3])
def test_loss_rejects_labels_out_of_range(fused, bad):
    """A negative label would index from the end in NumPy: a silent wrong loss."""
    loss = nn.SoftmaxCrossEntropy(np.float32)
    logits = np.zeros((4, 3), np.float32)
    labels = np.array([0, 1, bad, 2], np.int32)
    with pytest.raises(ValueError, match="0..2"):
        loss.forward_backward(logits, labels)
    with pytest.raises(ValueError, match="0..2"):
        loss.loss(logits, labels)
