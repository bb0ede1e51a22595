"""fastact on dask arrays: lazy results equal to the in-memory ones, with the
threaded scheduler and a local cluster of worker processes; errors at call
time; the MLP's inference and its streamed fit."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

import fastact as fa  # noqa: E402
from fastact.nn import MLP  # noqa: E402
from reference import prelu_backward_ref  # noqa: E402

FLOATS = [np.float32, np.float64]


@pytest.fixture(scope="module")
def client():
    """One cluster for the module: 2 worker processes on 127.0.0.1."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        with distributed.Client(cluster, set_as_default=False) as c:
            yield c


@pytest.fixture(params=["threads", "cluster"])
def scheduler(request):
    """What compute() runs on: dask's threaded scheduler or the local cluster."""
    if request.param == "threads":
        return "threads"
    return request.getfixturevalue("client")


def compute(scheduler, *arrays):
    out = dask.compute(*arrays, scheduler=scheduler)
    return out[0] if len(arrays) == 1 else out


# Uneven chunks, a chunk of size 0 on each axis, and the channel axis (1)
# split in several chunks.
SHAPE = (9, 6, 5)
CHUNKS = ((4, 0, 5), (1, 3, 0, 2), (5,))


def _data(rng, dtype, shape=SHAPE):
    x = rng.standard_normal(shape).astype(dtype)
    x.flat[::7] = 0.0  # x == 0 exercises the backward conventions
    return x


def _unknowable(shape, dtype, chunks):
    """A dask array whose blocks fail when computed: proves nothing ran."""
    def boom(block_info=None):
        raise AssertionError("a block was computed")
    return da.map_blocks(boom, dtype=dtype, chunks=chunks, meta=np.empty((0,) * len(shape), dtype))


FORWARD = {
    "relu": lambda x: fa.relu(x),
    "leaky_relu": lambda x: fa.leaky_relu(x, 0.1),
    "gelu": lambda x: fa.gelu(x),
    "gelu_tanh": lambda x: fa.gelu(x, approximate="tanh"),
}
BACKWARD = {
    "relu": lambda g, x: fa.relu_backward(g, x),
    "leaky_relu": lambda g, x: fa.leaky_relu_backward(g, x, 0.1),
    "gelu": lambda g, x: fa.gelu_backward(g, x),
    "gelu_tanh": lambda g, x: fa.gelu_backward(g, x, approximate="tanh"),
}


def test_import_fastact_does_not_import_dask():
    code = ("import sys, numpy as np, fastact, fastact.nn\n"
            "fastact.relu(np.ones(3)); fastact.gelu([1.0, 2.0])\n"
            "assert 'dask' not in sys.modules, sorted(m for m in sys.modules if 'dask' in m)\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------ elementwise --

@pytest.mark.parametrize("name", FORWARD)
@pytest.mark.parametrize("dtype", FLOATS)
def test_forward_matches_in_memory(name, dtype, scheduler, rng):
    x = _data(rng, dtype)
    dx = da.from_array(x, chunks=CHUNKS)
    lazy = FORWARD[name](dx)
    assert isinstance(lazy, da.Array)
    assert lazy.dtype == dtype and lazy.chunks == CHUNKS
    assert type(lazy._meta) is np.ndarray and lazy._meta.dtype == dtype
    got = compute(scheduler, lazy)
    assert got.dtype == dtype
    # Elementwise results do not depend on how the array is split.
    np.testing.assert_array_equal(got, FORWARD[name](x))


@pytest.mark.parametrize("name", BACKWARD)
@pytest.mark.parametrize("dtype", FLOATS)
def test_backward_matches_in_memory(name, dtype, scheduler, rng):
    x, g = _data(rng, dtype), _data(rng, dtype)
    want = BACKWARD[name](g, x)
    dx = da.from_array(x, chunks=CHUNKS)
    dg = da.from_array(g, chunks=(3, 2, 2))  # other chunks: they follow x's
    lazy = BACKWARD[name](dg, dx)
    assert lazy.chunks == CHUNKS and lazy.dtype == dtype
    np.testing.assert_array_equal(compute(scheduler, lazy), want)


@st.composite
def _chunked(draw):
    """A shape of up to 3 axes and a split of each axis, 0-size pieces allowed."""
    shape = draw(st.lists(st.integers(0, 7), min_size=1, max_size=3))
    chunks = []
    for n in shape:
        cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
        chunks.append(tuple(np.diff([0, *cuts, n]).tolist()))
    return tuple(shape), tuple(chunks)


@settings(max_examples=30, deadline=None)
@given(layout=_chunked(), seed=st.integers(0, 2**32 - 1))
def test_any_chunking_matches_in_memory(layout, seed):
    shape, chunks = layout
    rng = np.random.default_rng(seed)
    x, g = rng.standard_normal(shape), rng.standard_normal(shape)
    dx, dg = da.from_array(x, chunks=chunks), da.from_array(g, chunks=chunks)
    for name in FORWARD:
        np.testing.assert_array_equal(FORWARD[name](dx).compute(scheduler="threads"),
                                      FORWARD[name](x))
    for name in BACKWARD:
        np.testing.assert_array_equal(BACKWARD[name](dg, dx).compute(scheduler="threads"),
                                      BACKWARD[name](g, x))
    if len(shape) >= 2:
        w = rng.uniform(0.05, 0.5, shape[1])
        gi, gw = dask.compute(*fa.prelu_backward(dg, dx, w), scheduler="threads")
        want_gi, _ = fa.prelu_backward(g, x, w)
        _ref, exact = prelu_backward_ref(g, x, w, 1)
        np.testing.assert_array_equal(gi, want_gi)
        np.testing.assert_allclose(gw, exact, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("name", BACKWARD)
def test_backward_mixed_dask_and_numpy(name, rng):
    """Either argument may be a NumPy array: it is split like the dask one."""
    x, g = _data(rng, np.float32), _data(rng, np.float32)
    want = BACKWARD[name](g, x)
    lazy = BACKWARD[name](g, da.from_array(x, chunks=CHUNKS))
    assert lazy.chunks == CHUNKS
    np.testing.assert_array_equal(lazy.compute(scheduler="threads"), want)
    lazy = BACKWARD[name](da.from_array(g, chunks=CHUNKS), x)
    assert lazy.chunks == CHUNKS
    np.testing.assert_array_equal(lazy.compute(scheduler="threads"), want)


@pytest.mark.parametrize("shape, chunks", [((), ()), ((0,), ((0,),)), ((0, 3), ((0,), (2, 1)))])
def test_empty_and_zero_dimensional(shape, chunks, rng):
    x = rng.standard_normal(shape)
    dx = da.from_array(x, chunks=chunks) if shape else da.from_array(x)
    for name, fn in FORWARD.items():
        np.testing.assert_array_equal(fn(dx).compute(scheduler="threads"), fn(x))
    for name, fn in BACKWARD.items():
        np.testing.assert_array_equal(fn(dx, dx).compute(scheduler="threads"), fn(x, x))


def test_big_endian_input_gives_native_output(rng):
    x = _data(rng, np.dtype(">f8"))
    lazy = fa.gelu(da.from_array(x, chunks=4))
    assert lazy.dtype == np.float64 and lazy.dtype.isnative
    np.testing.assert_array_equal(lazy.compute(scheduler="threads"), fa.gelu(x))


# ------------------------------------------------------------------ PReLU --

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("weight_kind", ["numpy", "dask", "shared"])
@pytest.mark.parametrize("channel_chunks", [(6,), (1, 3, 0, 2)], ids=["whole", "chunked"])
def test_prelu_forward(dtype, weight_kind, channel_chunks, scheduler, rng):
    x = _data(rng, dtype)
    weight = rng.uniform(0.05, 0.5, 1 if weight_kind == "shared" else 6).astype(dtype)
    w = da.from_array(weight, chunks=4) if weight_kind == "dask" else weight
    dx = da.from_array(x, chunks=(CHUNKS[0], channel_chunks, CHUNKS[2]))
    lazy = fa.prelu(dx, w)
    assert lazy.chunks == dx.chunks and lazy.dtype == dtype
    np.testing.assert_array_equal(compute(scheduler, lazy), fa.prelu(x, weight))


@pytest.mark.parametrize("shape, chunks", [((3, 1), ((3,), (0, 1))), ((0, 1), ((0,), (0, 1)))])
def test_prelu_shared_slope_beside_an_empty_chunk(shape, chunks, rng):
    """A shared slope next to a 0-size chunk: dask's own chunk alignment got
    this shape wrong, so fastact aligns the chunks itself."""
    x = rng.standard_normal(shape)
    w = np.array([0.3])
    dx = da.from_array(x, chunks=chunks)
    np.testing.assert_array_equal(fa.prelu(dx, w).compute(scheduler="threads"), fa.prelu(x, w))
    gi, gw = dask.compute(*fa.prelu_backward(dx, dx, w), scheduler="threads")
    want_gi, want_gw = fa.prelu_backward(x, x, w)
    np.testing.assert_array_equal(gi, want_gi)
    np.testing.assert_allclose(gw, want_gw, rtol=1e-12)


def test_prelu_forward_other_axes(rng):
    x = _data(rng, np.float64)
    w = rng.uniform(0.05, 0.5, 5)
    got = fa.prelu(da.from_array(x, chunks=(4, 3, (2, 0, 3))), w, axis=-1)
    np.testing.assert_array_equal(got.compute(scheduler="threads"), fa.prelu(x, w, axis=-1))
    x1, w1 = rng.standard_normal(11), rng.uniform(0.05, 0.5, 11)
    got = fa.prelu(da.from_array(x1, chunks=((3, 0, 8),)), w1, axis=0)
    np.testing.assert_array_equal(got.compute(scheduler="threads"), fa.prelu(x1, w1, axis=0))
    # numpy x, dask weight
    got = fa.prelu(x1, da.from_array(w1, chunks=4), axis=0)
    np.testing.assert_array_equal(got.compute(scheduler="threads"), fa.prelu(x1, w1, axis=0))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("weight_kind", ["numpy", "dask", "shared"])
@pytest.mark.parametrize("channel_chunks", [(6,), (1, 3, 0, 2)], ids=["whole", "chunked"])
def test_prelu_backward(dtype, weight_kind, channel_chunks, scheduler, rng):
    x, g = _data(rng, dtype), _data(rng, dtype)
    weight = rng.uniform(0.05, 0.5, 1 if weight_kind == "shared" else 6).astype(dtype)
    w = da.from_array(weight, chunks=4) if weight_kind == "dask" else weight
    dx = da.from_array(x, chunks=(CHUNKS[0], channel_chunks, CHUNKS[2]))
    dg = da.from_array(g, chunks=3)
    grad_input, grad_weight = fa.prelu_backward(dg, dx, w)
    assert grad_input.chunks == dx.chunks and grad_input.dtype == dtype
    assert grad_weight.shape == weight.shape and grad_weight.dtype == dtype
    gi, gw = compute(scheduler, grad_input, grad_weight)
    want_gi, want_gw = fa.prelu_backward(g, x, weight)
    np.testing.assert_array_equal(gi, want_gi)
    # grad_weight: the documented accuracy against the exact sum (fsum of
    # float64 products), as for the in-memory function.
    _ref_gi, exact = prelu_backward_ref(g, x, weight, 1)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(gw, exact, rtol=rtol, atol=1e-300)
    np.testing.assert_allclose(gw, want_gw, rtol=rtol, atol=1e-300)


def test_prelu_backward_many_blocks_tree_reduction(rng):
    """Many blocks: the partials go through several levels of the tree."""
    x, g = rng.standard_normal((400, 3)), rng.standard_normal((400, 3))
    w = np.array([0.1, 0.2, 0.3])
    grad_input, grad_weight = fa.prelu_backward(da.from_array(g, chunks=(7, 1)),
                                                da.from_array(x, chunks=(7, 1)), w)
    graph_keys = [str(k) for k in dict(grad_weight.__dask_graph__())]
    assert any("partial" in k for k in graph_keys)  # a tree, not one flat sum
    _gi, exact = prelu_backward_ref(g, x, w, 1)
    np.testing.assert_allclose(grad_weight.compute(scheduler="threads"), exact, rtol=1e-12)


def test_prelu_backward_one_dimensional_and_mixed(rng):
    x, g, w = rng.standard_normal(10), rng.standard_normal(10), rng.uniform(0.1, 0.3, 10)
    want_gi, _ = fa.prelu_backward(g, x, w, axis=0)
    _gi, exact = prelu_backward_ref(g, x, w, 0)
    gi, gw = dask.compute(*fa.prelu_backward(g, da.from_array(x, chunks=((3, 0, 7),)), w,
                                             axis=0), scheduler="threads")
    np.testing.assert_array_equal(gi, want_gi)
    np.testing.assert_allclose(gw, exact, rtol=1e-12)
    gi, gw = dask.compute(*fa.prelu_backward(da.from_array(g, chunks=4), x, w, axis=0),
                          scheduler="threads")
    np.testing.assert_array_equal(gi, want_gi)
    np.testing.assert_allclose(gw, exact, rtol=1e-12)


# ----------------------------------------------------- errors at call time --

def _lazy_x(dtype=np.float32, shape=(4, 3)):
    return _unknowable(shape, dtype, tuple((s,) for s in shape))


@pytest.mark.parametrize("call, error, match", [
    (lambda x: fa.relu(x.astype(np.int64)), TypeError, "x must have dtype float16, bfloat16, float32 or float64"),
    (lambda x: fa.gelu(x.astype(bool)), TypeError, "x must have dtype"),
    (lambda x: fa.leaky_relu(x.astype(np.complex64)), TypeError, "x must have dtype"),
    (lambda x: fa.relu(x, out=np.empty((4, 3), np.float32)), TypeError, "immutable"),
    (lambda x: fa.gelu(x, out=x), TypeError, "immutable"),
    (lambda x: fa.gelu(x, approximate="fast"), ValueError, "approximate"),
    (lambda x: fa.leaky_relu(x, "0.1"), TypeError, "negative_slope"),
    (lambda x: fa.relu_backward(x.astype(np.float64), x), TypeError, "grad_output has dtype"),
    (lambda x: fa.relu_backward(np.zeros((4, 3), np.float64), x), TypeError, "grad_output has dtype"),
    (lambda x: fa.gelu_backward(x[:2], x), ValueError, "grad_output must have the shape"),
    (lambda x: fa.relu_backward(x, x, out=np.empty((4, 3), np.float32)), TypeError, "immutable"),
    (lambda x: fa.prelu(x, np.ones(5, np.float32)), ValueError, r"weight must have shape \(3,\)"),
    (lambda x: fa.prelu(x, np.ones(3, np.float64)), TypeError, "weight has dtype"),
    (lambda x: fa.prelu(x, np.ones(3, np.float32), axis=2), ValueError, "out of range"),
    (lambda x: fa.prelu(x, np.ones(3, np.float32), axis=1.0), TypeError, "axis must be an integer"),
    (lambda x: fa.prelu(x, np.ones(3, np.float32), out=x), TypeError, "immutable"),
    (lambda x: fa.prelu_backward(x, x, np.ones(4, np.float32)), ValueError, "weight must have shape"),
    (lambda x: fa.prelu_backward(x[:1], x, np.ones(3, np.float32)), ValueError, "grad_output must"),
    (lambda x: fa.prelu_backward(x.astype(np.float64), x, np.ones(3, np.float32)), TypeError,
     "grad_output has dtype"),
])
def test_errors_at_call_time(call, error, match):
    """The NumPy functions' errors, raised before any block is computed."""
    with pytest.raises(error, match=match):
        call(_lazy_x())


def test_calls_are_lazy():
    x = _lazy_x()
    for lazy in (fa.relu(x), fa.gelu(x), fa.leaky_relu_backward(x, x, 0.2),
                 *fa.prelu_backward(x, x, np.ones(3, np.float32))):
        assert isinstance(lazy, da.Array)
    with pytest.raises(AssertionError, match="a block was computed"):
        fa.relu(x).compute(scheduler="sync")


def test_sequence_companion_takes_x_dtype(rng):
    """As in the NumPy functions, a list beside a float32 x becomes float32."""
    x = rng.standard_normal(4).astype(np.float32)
    g = [1.0, -2.0, 3.0, 4.0]
    got = fa.relu_backward(g, da.from_array(x, chunks=2))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.compute(scheduler="threads"), fa.relu_backward(g, x))


# ------------------------------------------------------------------- MLP --

def _problem(n=300, features=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, features)).astype(np.float32)
    y = (np.argmax(X[:, :classes], axis=1)).astype(np.int64)
    return X, y


@pytest.mark.parametrize("activation", ["relu", "prelu", "gelu"])
def test_mlp_inference_on_dask(activation, scheduler):
    X, y = _problem()
    model = MLP((6, 8, 3), activation=activation, seed=1)
    model.fit(X, y, epochs=2, batch_size=16, validation_split=0.0)
    dX = da.from_array(X, chunks=((100, 0, 150, 50), 4))  # features split: rejoined per block
    dy = da.from_array(y, chunks=70)
    proba = model.predict_proba(dX, batch_size=32)
    labels = model.predict(dX)
    assert isinstance(proba, da.Array) and isinstance(labels, da.Array)
    assert proba.dtype == model.dtype and labels.dtype == np.int64
    got_proba, got_labels = compute(scheduler, proba, labels)
    np.testing.assert_array_equal(got_labels, model.predict(X))
    np.testing.assert_allclose(got_proba, model.predict_proba(X), rtol=1e-6, atol=1e-7)
    want = model.evaluate(X, y)
    with dask.config.set(scheduler=scheduler):
        got = model.evaluate(dX, dy)
    assert got["accuracy"] == want["accuracy"]
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-6)


def test_mlp_inference_errors_at_call_time():
    model = MLP((6, 8, 3), seed=1)
    with pytest.raises(ValueError, match="6"):
        model.predict(_unknowable((10, 5), np.float32, ((10,), (5,))))
    with pytest.raises(ValueError, match="2-D"):
        model.predict_proba(_unknowable((10,), np.float32, ((10,),)))
    with pytest.raises(TypeError, match="numbers"):
        model.predict(da.from_array(np.array([["a"] * 6]), chunks=1))
    with pytest.raises(ValueError, match="labels"):
        model.evaluate(_unknowable((10, 6), np.float32, ((10,), (6,))),
                       _unknowable((9,), np.int64, ((9,),)))
    with pytest.raises(ValueError, match="1-D"):
        model.fit(_unknowable((10, 6), np.float32, ((10,), (6,))),
                  _unknowable((10, 1), np.int64, ((10,), (1,))))


def test_mlp_fit_one_chunk_equals_numpy_fit():
    """One chunk: the streamed order is NumPy's permutation, so the weights match."""
    X, y = _problem()
    a = MLP((6, 8, 3), activation="gelu", seed=3)
    hist_a = a.fit(X, y, epochs=3, batch_size=32, validation_split=0.2)
    b = MLP((6, 8, 3), activation="gelu", seed=3)
    hist_b = b.fit(da.from_array(X, chunks=-1), da.from_array(y, chunks=-1), epochs=3,
                   batch_size=32, validation_split=0.2)
    np.testing.assert_array_equal(a.parameter_pairs()[0][0], b.parameter_pairs()[0][0])
    assert hist_a["loss"] == hist_b["loss"]
    assert hist_a["val_accuracy"] == hist_b["val_accuracy"]


def test_mlp_fit_streamed_is_deterministic_and_learns(scheduler):
    X, y = _problem(600)
    chunks = ((150, 0, 200, 250), 6)
    weights = []
    with dask.config.set(scheduler=scheduler):
        for _ in range(2):
            model = MLP((6, 16, 3), activation="relu", seed=5)
            history = model.fit(da.from_array(X, chunks=chunks), da.from_array(y, chunks=100),
                                epochs=4, batch_size=32, validation_split=0.0, lr=1e-2)
            weights.append(model.parameter_pairs()[0][0].copy())
    np.testing.assert_array_equal(weights[0], weights[1])
    assert history["loss"][-1] < history["loss"][0]
    # Several blocks: the order differs from the in-memory fit's, and it
    # learns as well (both reach 0.99 on this separable problem).
    ref = MLP((6, 16, 3), activation="relu", seed=5)
    ref.fit(X, y, epochs=4, batch_size=32, validation_split=0.0, lr=1e-2)
    assert not np.array_equal(ref.parameter_pairs()[0][0], weights[0])
    assert model.evaluate(X, y)["accuracy"] > 0.95
    assert ref.evaluate(X, y)["accuracy"] > 0.95


def test_streamed_order_is_blocks_then_rows():
    """Every epoch visits every sample once, one block after another."""
    from fastact.nn import _batches

    X, y = _problem(50)
    reader = _batches.BlockReader(da.from_array(X, chunks=((10, 0, 25, 15), 6)),
                                  da.from_array(y, chunks=7), np.float32)
    rng = np.random.default_rng(0)
    order = reader.permutation_source(rng).permutation(50)
    assert sorted(order.tolist()) == list(range(50))
    starts = {0: range(0, 10), 1: range(10, 10), 2: range(10, 35), 3: range(35, 50)}
    runs = []
    for i in order:
        block = next(b for b, r in starts.items() if i in r)
        if not runs or runs[-1] != block:
            runs.append(block)
    assert sorted(runs) == [0, 2, 3]  # each block one contiguous run
    xb = np.empty((8, 6), np.float32)
    yb = np.empty(8, np.int32)
    idx = order[5:13]
    reader.take(reader.X, idx, axis=0, out=xb, mode="clip")
    reader.take(reader.y, idx, out=yb, mode="clip")
    np.testing.assert_array_equal(xb, X[idx])
    np.testing.assert_array_equal(yb, y[idx])
    assert reader.loaded <= 2


def test_mlp_fit_streamed_bad_values_named():
    X, y = _problem(40)
    X[33, 2] = np.nan
    model = MLP((6, 8, 3), seed=0)
    with pytest.raises(ValueError, match="sample 33"):
        model.fit(da.from_array(X, chunks=10), da.from_array(y, chunks=10), epochs=1,
                  validation_split=0.0, shuffle=False)
    X, y = _problem(40)
    y[12] = 7
    with pytest.raises(ValueError, match="outside 0..2"):
        model.fit(da.from_array(X, chunks=10), y, epochs=1, validation_split=0.0)


def test_mlp_fit_streamed_refuses_checkpoints(tmp_path):
    X, y = _problem(40)
    model = MLP((6, 8, 3), seed=0)
    for options in ({"checkpoint": tmp_path / "c.ckpt"}, {"resume": tmp_path / "c.ckpt"}):
        with pytest.raises(ValueError, match="NumPy training data"):
            model.fit(da.from_array(X, chunks=10), y, epochs=1, validation_split=0.0, **options)
    assert not (tmp_path / "c.ckpt").exists()


def test_mlp_fit_mixed_dask_and_numpy():
    """NumPy labels with dask samples (and the reverse) follow the dask side's
    blocks; dask validation data is evaluated block by block."""
    X, y = _problem(200)
    dX, dy = da.from_array(X, chunks=70), da.from_array(y, chunks=70)
    runs = []
    for Xs, ys in ((dX, y), (X, dy), (dX, dy)):
        model = MLP((6, 8, 3), seed=2)
        history = model.fit(Xs, ys, epochs=2, batch_size=16, validation_data=(dX[:50], y[:50]))
        runs.append((model.parameter_pairs()[0][0].copy(), history["val_accuracy"]))
    for weights, val_accuracy in runs[1:]:
        np.testing.assert_array_equal(weights, runs[0][0])
        assert val_accuracy == runs[0][1]
    model = MLP((6, 8, 3), seed=2)
    model.parameter_pairs()[0][0][...] = runs[0][0]
    assert runs[0][1][-1] == model.evaluate(X[:50], y[:50])["accuracy"]
