"""Mixed-precision training: MLP(..., dtype="bfloat16").

Activations stored in bfloat16 and run through fastact's bfloat16 kernels;
weights, gradients, optimiser state and matrix products in float32.
"""

import numpy as np
import pytest

import fastact as fa
from fastact.nn import MLP, Adam, CheckpointError, layers, make_activation

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
ACTS = ["relu", "leaky_relu", "prelu", "gelu", "gelu_tanh"]

# bfloat16 keeps 8 significant bits (7 stored + the implicit one), so
# rounding to nearest changes a value by at most half an ulp: a relative
# error of at most u = 2**-8.
U = 2.0 ** -8


def blobs(n=120, d=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(classes, d))
    y = rng.integers(0, classes, size=n)
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y


@pytest.fixture(params=[True, False], ids=["fused", "kernels"])
def fused(request, monkeypatch):
    """The float32 parts may use the compiled loops or not; both must work."""
    if request.param and layers._fused is None:
        pytest.skip("fastact.nn._fused is not built")
    monkeypatch.setattr(layers, "USE_FUSED", request.param)
    return request.param


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "prelu", "gelu"])
def test_bfloat16_model_trains_with_float32_state(activation, fused):
    X, y = blobs(300, 6, 3)
    model = MLP((6, 16, 3), activation, dtype="bfloat16", seed=0)
    opt = Adam(model.parameter_pairs(), lr=1e-2)
    history = model.fit(X, y, epochs=5, batch_size=16, validation_split=0.2, optimizer=opt)
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.9
    assert model.dtype == np.float32 and model.activation_dtype == BF16
    assert all(p.dtype == np.float32 for _n, p in model.named_parameters())
    params, grads = model.parameter_pairs()[0]
    assert params.dtype == grads.dtype == np.float32
    moments = opt.state_dict()["arrays"]
    assert moments and all(a.dtype == np.float32 for a in moments.values())
    assert model.predict_proba(X).dtype == np.float32


@pytest.mark.parametrize("activation", ACTS)
def test_activations_are_stored_in_bfloat16(activation, fused):
    X, y = blobs(40, 6, 3)
    model = MLP((6, 10, 8, 3), activation, dtype="bfloat16", seed=0)
    model.compute_gradients(X, y)
    dense0, act1, dense2 = model.layers[:3]
    z = act1._x  # the kept pre-activation
    assert z.dtype == BF16 and z.shape == (40, 10)
    # the next layer keeps the activation's output, bfloat16 too
    assert dense2._x.dtype == BF16
    # z is the float32 pre-activation rounded once to bfloat16
    z32 = X @ dense0.weight + dense0.bias
    np.testing.assert_array_equal(z.astype(np.float32), z32.astype(BF16).astype(np.float32))
    # and the output is fastact's bfloat16 kernel applied to it
    slope = act1.weight.astype(BF16) if activation == "prelu" else None
    kernel = {"relu": lambda v: fa.relu(v),
              "leaky_relu": lambda v: fa.leaky_relu(v, 0.01),
              "prelu": lambda v: fa.prelu(v, slope, axis=1),
              "gelu": lambda v: fa.gelu(v),
              "gelu_tanh": lambda v: fa.gelu(v, approximate="tanh")}[activation]
    assert np.array_equal(dense2._x.view(np.uint16), kernel(z).view(np.uint16))
    for layer in model.layers:  # no float32 copy of an activation is kept
        if isinstance(layer, layers.Activation):
            assert layer._x.dtype == BF16


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("activation", ACTS)
def test_gradients_match_a_float64_reference(activation, seed):
    """Every gradient within 4u (norm-wise) of float64 with the same weights.

    The tolerance: in a network with one hidden layer the float32 inputs and
    weights give the pre-activation z in float32 (relative error ~2**-24,
    negligible); the bfloat16 path then rounds four values, each by at most
    u = 2**-8 relative: z (kept), the activation's output (kept), the
    gradient reaching the activation (the kernel takes bfloat16), and the
    activation's gradient.  Each gradient entry is a sum of products whose
    factors carry these roundings, so to first order its relative error, and
    the norm-wise relative error of each gradient array, is at most 4u
    (for GELU, whose derivative depends on z smoothly, the rounding of z
    moves gelu'(z) by |z gelu''(z)| u, below u).  One hidden layer keeps the
    bound clean: rounding never changes a sign, so no pre-activation crosses
    a kink of ReLU or PReLU, which a deeper network's propagated rounding
    could do.  Measured: 0.04u to 0.8u.
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(64, 20)).astype(np.float32)
    y = rng.integers(0, 5, size=64)
    model = MLP((20, 32, 5), activation, dtype="bfloat16", seed=seed)
    ref = MLP((20, 32, 5), activation, dtype=np.float64, seed=seed)
    for layer in (model, ref):
        for act in layer.layers:
            if isinstance(act, layers.PReLU):  # slopes of both signs
                act.weight[...] = np.random.default_rng(7).uniform(-0.8, 1.2, act.weight.shape)
    ref.parameter_pairs()[0][0][...] = model.parameter_pairs()[0][0]  # exact widening
    loss = model.compute_gradients(X, y)
    ref_loss = ref.compute_gradients(X, y)
    assert loss == pytest.approx(ref_loss, rel=4 * U)
    names = [name for name, _p in model.named_parameters()]
    for name, (got, want) in zip(names, _grads(model, ref)):
        assert got.dtype == np.float32
        err = np.linalg.norm(got - want) / np.linalg.norm(want)
        assert err <= 4 * U, f"{name}: relative error {err / U:.2f}u"
    # not vacuous: the bfloat16 roundings are there (float32 alone is ~1e-7)
    got, want = _grads(model, ref)[0]
    assert np.linalg.norm(got - want) / np.linalg.norm(want) > U / 100


def _grads(model, ref):
    return [(g, gr) for (_a, _b, g), (_c, _d, gr) in
            zip([t for layer in model.layers for t in layer.parameters()],
                [t for layer in ref.layers for t in layer.parameters()])]


def test_float32_model_is_unchanged_by_the_option():
    """dtype float32 builds no bfloat16 storage (its results are bit-identical)."""
    model = MLP((6, 8, 3), "gelu", seed=0)
    assert model.activation_dtype == np.float32
    assert all(getattr(layer, "storage_dtype", None) is None for layer in model.layers)


@pytest.mark.parametrize("activation", ["relu", "prelu", "gelu"])
def test_save_load_records_bfloat16(activation, tmp_path):
    X, y = blobs(80, 6, 3)
    model = MLP((6, 9, 3), activation, dtype=ml_dtypes.bfloat16, seed=1)
    model.fit(X, y, epochs=2, batch_size=8)
    path = model.save(tmp_path / "m.npz")
    same = MLP.load(path)
    assert same.config()["dtype"] == "bfloat16" and same.activation_dtype == BF16
    assert "dtype=bfloat16" in repr(same)
    np.testing.assert_array_equal(same.predict_proba(X), model.predict_proba(X))


def test_checkpoint_records_the_dtype(tmp_path):
    """A bfloat16 run's checkpoint does not resume a float32 model."""
    X, y = blobs(60, 6, 3)
    path = tmp_path / "ck.npz"
    fit = dict(epochs=2, batch_size=8, seed=0)
    MLP((6, 5, 3), dtype="bfloat16", seed=0).fit(X, y, checkpoint=path, **dict(fit, epochs=1))
    with pytest.raises(CheckpointError, match="dtype"):
        MLP((6, 5, 3), dtype="float32", seed=0).fit(X, y, resume=path, **fit)
    # and resumes the bfloat16 model it came from, bit-identically
    full = MLP((6, 5, 3), dtype="bfloat16", seed=0)
    full.fit(X, y, **fit)
    resumed = MLP((6, 5, 3), dtype="bfloat16", seed=0)
    resumed.fit(X, y, resume=path, **fit)
    np.testing.assert_array_equal(resumed.parameter_pairs()[0][0], full.parameter_pairs()[0][0])


def test_bad_dtypes_are_clear_errors():
    with pytest.raises(TypeError, match=r"dtype must be float32 or float64 \(or bfloat16"):
        MLP((4, 3, 2), dtype="float16")
    with pytest.raises(TypeError, match=r"dtype must be float32 or float64 \(or bfloat16"):
        MLP((4, 3, 2), dtype="bfloat17")
    with pytest.raises(TypeError, match="storage_dtype must be bfloat16 on a float32 layer"):
        make_activation("relu", 3, np.float64, storage_dtype=BF16)
    with pytest.raises(TypeError, match="storage_dtype must be bfloat16"):
        make_activation("relu", 3, np.float32, storage_dtype=np.float16)


def test_cli_train_bfloat16_saves_a_bfloat16_model(tmp_path, capsys):
    from fastact import datasets
    from fastact.cli import main

    rng = np.random.default_rng(0)
    root = tmp_path / "data" / "fashion-mnist"
    root.mkdir(parents=True)
    files = datasets.get_spec("fashion-mnist").files
    for role, n in [("train", 200), ("test", 50)]:
        y = rng.integers(0, 10, size=n).astype(np.uint8)
        x = (y[:, None] * 25 + rng.integers(0, 30, size=(n, 64))).astype(np.uint8)
        datasets.write_idx(root / files[role + "_images"], x.reshape(n, 8, 8))
        datasets.write_idx(root / files[role + "_labels"], y)
    out = tmp_path / "m.npz"
    rc = main(["train", "--data-dir", str(tmp_path / "data"), "--no-download", "--epochs", "2",
               "--hidden", "16", "--dtype", "bfloat16", "--seed", "1", "--threads", "1",
               "--no-progress", "--save", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "test accuracy" in captured.out
    model = MLP.load(out)
    assert model.activation_dtype == BF16 and model.dtype == np.float32


def test_subnormal_flush_keeps_every_other_bfloat16_value():
    """GELU's flush: over all 65,536 bfloat16 values, only subnormals change, to ±0."""
    bits = np.arange(1 << 16, dtype=np.uint16)
    a = bits.copy().view(BF16)
    layers._flush_subnormals_16(a)
    wide = bits.view(BF16).astype(np.float32)
    sub = (wide != 0) & (np.abs(wide) < np.finfo(np.float32).tiny)
    assert np.count_nonzero(sub) == 2 * 127
    got = a.view(np.uint16)
    np.testing.assert_array_equal(got[sub], bits[sub] & 0x8000)
    np.testing.assert_array_equal(got[~sub], bits[~sub])


def test_bfloat16_without_ml_dtypes_is_a_clear_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ml_dtypes", None)  # import fails
    with pytest.raises(ImportError, match=r"needs ml_dtypes: pip install 'fastact\[half\]'"):
        MLP((4, 3, 2), dtype="bfloat16")
