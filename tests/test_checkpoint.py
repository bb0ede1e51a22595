"""Checkpoints and resuming: bit-identical continuation, SIGKILL, SIGINT, damaged files."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fastact.nn import MLP, CheckpointError, TrainingInterrupted
from fastact.nn import checkpoint as ck
from fastact.nn.optim import SGD, Adam


def blobs(n=100, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    centres = rng.normal(scale=3.0, size=(k, d))
    X = (centres[y] + rng.normal(size=(n, d))).astype(np.float32)
    return X, y


# 100 samples, 10 held out, batch 16: 6 steps per epoch, the last one short.
FIT = dict(epochs=3, batch_size=16, validation_split=0.1, seed=7)
STEPS = 6


def fresh(activation="prelu", dtype=np.float32):
    return MLP((6, 8, 3), activation, dtype=dtype, seed=1)


@pytest.fixture(autouse=True)
def _python_sigint_handler():
    """Python's own SIGINT handler, even where the test runner was started with
    SIGINT ignored (a background job of a shell without job control)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _interrupt_at(step):
    """A progress factory that sends this process SIGINT after global step ``step``."""
    taken = [0]

    class Bar:
        def update(self, n):
            before = taken[0]
            taken[0] += n
            if before < step <= taken[0]:
                signal.raise_signal(signal.SIGINT)

        def close(self):
            pass

    return lambda total, desc: Bar()


@pytest.mark.parametrize("opt", [dict(optimizer="adam", lr=1e-2),
                                 dict(optimizer="sgd", lr=5e-2, momentum=0.9)],
                         ids=["adam", "sgd-momentum"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_resume_after_interrupt_is_bit_identical_at_every_step(opt, dtype, tmp_path):
    X, y = blobs()
    ref = fresh(dtype=dtype)
    ref_hist = ref.fit(X, y, **FIT, **opt)
    path = tmp_path / "c.npz"
    # Every position: mid-epoch, an epoch's last (short) step, the last step.
    for stop in range(1, FIT["epochs"] * STEPS + 1):
        model = fresh(dtype=dtype)
        with pytest.raises(TrainingInterrupted) as info:
            model.fit(X, y, checkpoint=path, checkpoint_every=1000,
                      progress=_interrupt_at(stop), **FIT, **opt)
        assert (info.value.epoch - 1) * STEPS + info.value.step == stop
        state = ck.load_checkpoint(path).state
        assert state.epoch * STEPS + state.step == stop
        resumed = fresh(dtype=dtype)
        hist = resumed.fit(X, y, resume=path, **FIT, **opt)
        assert np.array_equal(resumed._flat_params, ref._flat_params), stop
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert hist[key] == ref_hist[key], (stop, key)


def test_interrupt_without_checkpoint_keeps_a_consistent_model():
    X, y = blobs()
    model = fresh()
    with pytest.raises(TrainingInterrupted, match="epoch 1, step 4/6; no checkpoint"):
        model.fit(X, y, progress=_interrupt_at(4), **FIT)
    assert np.isfinite(model._flat_params).all()
    import signal as _signal
    assert _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler


def test_resume_from_end_of_training_and_with_more_epochs(tmp_path):
    X, y = blobs()
    path = tmp_path / "c.npz"
    ref = fresh()
    ref.fit(X, y, **dict(FIT, epochs=5))
    first = fresh()
    first.fit(X, y, checkpoint=path, **FIT)  # written at every epoch's end
    done = fresh()
    done.fit(X, y, resume=path, **FIT)  # nothing left to do
    assert np.array_equal(done._flat_params, first._flat_params)
    more = fresh()
    hist = more.fit(X, y, resume=path, checkpoint=path, **dict(FIT, epochs=5))
    assert np.array_equal(more._flat_params, ref._flat_params)
    assert len(hist["loss"]) == 5
    with pytest.raises(CheckpointError, match="past epoch 2.*at least 6 epochs"):
        fresh().fit(X, y, resume=path, **dict(FIT, epochs=2))


def test_checkpoint_holds_everything_to_continue(tmp_path):
    X, y = blobs()
    path = tmp_path / "c.npz"
    model = fresh()
    model.fit(X, y, checkpoint=path, checkpoint_every=4, optimizer="adam",
              **dict(FIT, epochs=1))
    c = ck.load_checkpoint(path)
    assert c.version == ck.CHECKPOINT_VERSION
    assert (c.state.epoch, c.state.step) == (1, 0)
    assert c.optimizer["steps"] == STEPS
    assert sorted(c.optimizer["arrays"]) == ["exp_avg.0", "exp_avg_sq.0"]
    assert c.state.rng_state["bit_generator"] == "PCG64"
    assert set(c.params) == {name for name, _ in model.named_parameters()}
    assert c.state.history["loss"] == model.history["loss"]
    assert c.run["model"] == model.config()
    assert c.run["fit"]["batch_size"] == 16 and c.run["optimizer"]["type"] == "Adam"


@pytest.mark.parametrize("change, key", [
    (dict(model=dict(activation="relu")), "model.activation"),
    (dict(model=dict(seed=2)), "model.seed"),
    (dict(fit=dict(seed=8)), "fit.seed"),
    (dict(fit=dict(batch_size=8)), "fit.batch_size"),
    (dict(fit=dict(lr=0.5)), "optimizer.lr"),
    (dict(fit=dict(optimizer="sgd")), "optimizer.type"),
    (dict(fit=dict(validation_split=0.2)), "fit.validation"),
    (dict(data="other"), "data.digest"),
    (dict(model=dict(sizes=(6, 9, 3))), "model.sizes"),
])
def test_resume_with_other_settings_is_refused(change, key, tmp_path):
    X, y = blobs()
    path = tmp_path / "c.npz"
    fresh().fit(X, y, checkpoint=path, **dict(FIT, epochs=1))
    margs = dict(sizes=(6, 8, 3), activation="prelu", seed=1)
    margs.update(change.get("model", {}))
    fargs = dict(FIT)
    fargs.update(change.get("fit", {}))
    if "data" in change:
        X = X.copy()
        X[3, 2] += 1
    with pytest.raises(CheckpointError) as info:
        MLP(**margs).fit(X, y, resume=path, **fargs)
    message = str(info.value)
    assert message.startswith(str(path)) and "cannot resume" in message and key in message


def test_checkpoint_every_needs_a_file():
    X, y = blobs()
    with pytest.raises(ValueError, match="checkpoint_every needs a checkpoint"):
        fresh().fit(X, y, checkpoint_every=3, **FIT)
    with pytest.raises(ValueError, match="checkpoint_every must be positive"):
        fresh().fit(X, y, checkpoint="x.npz", checkpoint_every=0, **FIT)


def test_divergence_names_epoch_and_step_and_writes_no_bad_checkpoint(tmp_path):
    X, y = blobs()
    path = tmp_path / "c.npz"
    with pytest.raises(FloatingPointError, match=r"epoch 1, step \d+"):
        fresh().fit(X, y, optimizer="sgd", lr=1e30, checkpoint=path, checkpoint_every=1,
                    **FIT)
    if path.exists():  # whatever was written before the divergence is finite
        c = ck.load_checkpoint(path)
        assert all(np.isfinite(v).all() for v in c.params.values())


def test_optimizer_state_round_trip():
    for make in (lambda pairs: Adam(pairs, lr=0.1), lambda pairs: SGD(pairs, 0.1, momentum=0.9)):
        rng = np.random.default_rng(0)
        p1, g = rng.random(10), rng.random(10)
        p2 = p1.copy()
        a, b = make([(p1, g)]), make([(p2, g)])
        a.step()
        a.step()
        state = a.state_dict()
        b.load_state_dict({"steps": state["steps"],
                           "arrays": {k: v.copy() for k, v in state["arrays"].items()}})
        p2[...] = p1
        a.step()
        b.step()
        assert np.array_equal(p1, p2)
        with pytest.raises(ValueError, match="missing"):
            b.load_state_dict({"steps": 1, "arrays": {}})
        bad = {k: v[:3] for k, v in state["arrays"].items()}
        with pytest.raises(ValueError, match="shape"):
            b.load_state_dict({"steps": 1, "arrays": bad})


# ----------------------------------------------------------------------------
# Atomic writes and damaged files
# ----------------------------------------------------------------------------


def test_atomic_write_leaves_the_old_file_on_error(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def write(handle):
        handle.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        ck.atomic_write(path, write)
    assert path.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["f.bin"]
    ck.atomic_write(path, lambda h: h.write(b"new"))
    assert path.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["f.bin"]


def test_atomic_write_removes_temporaries_of_dead_writers_only(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".f.bin.{dead.pid}.abc123.tmp"
    live = tmp_path / f".f.bin.{os.getppid()}.def456.tmp"  # a running writer's
    other = tmp_path / f".g.bin.{dead.pid}.abc123.tmp"     # another target's
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    ck.atomic_write(tmp_path / "f.bin", lambda h: h.write(b"new"))
    assert sorted(os.listdir(tmp_path)) == sorted(["f.bin", live.name, other.name])


def _rewrite(src, dst, header=None, drop=()):
    with np.load(src, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k not in drop}
    if header is not None:
        arrays["__header__"] = np.array(json.dumps(header))
    np.savez(dst, **arrays)


@pytest.fixture
def good_checkpoint(tmp_path):
    X, y = blobs()
    path = tmp_path / "good.npz"
    fresh().fit(X, y, checkpoint=path, checkpoint_every=4, **dict(FIT, epochs=1))
    with np.load(path) as data:
        header = json.loads(str(data["__header__"]))
    return path, header


def _damaged(good, header, tmp_path):
    """(name, path) of every kind of damage we can make from a good checkpoint."""
    raw = good.read_bytes()
    cases = []

    def add(name, data=None, **kw):
        p = tmp_path / f"{name}.npz"
        if data is not None:
            p.write_bytes(data)
        else:
            _rewrite(good, p, **kw)
        cases.append((name, p))

    for cut in (0, 10, 100, len(raw) // 2, len(raw) - 10):
        add(f"truncated{cut}", raw[:cut])
    add("garbage", np.random.default_rng(0).bytes(len(raw)))
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0xFF  # inside an array: the zip CRC catches it
    add("flipped", bytes(flipped))
    add("no_header", drop=("__header__",))
    add("no_param", drop=("param/layers.0.weight",))
    add("no_moment", drop=("optim/exp_avg.0",))
    for key in ("run", "state", "optimizer", "version"):
        h = dict(header)
        del h[key]
        add(f"no_{key}", header=h)
    for key in ("epoch", "step", "rng_state", "history"):
        h = json.loads(json.dumps(header))
        del h["state"][key]
        add(f"no_state_{key}", header=h)
    h = json.loads(json.dumps(header))
    h["state"]["step"] = -1
    add("negative_step", header=h)
    h = json.loads(json.dumps(header))
    h["state"]["step"] = 1000
    add("step_past_epoch", header=h)
    h = json.loads(json.dumps(header))
    h["state"]["rng_state"] = {"bit_generator": "PCG64", "state": "nonsense"}
    add("bad_rng", header=h)
    add("not_a_checkpoint", header={"format": "something else", "version": 1})
    return cases


def test_damaged_checkpoints_are_refused_naming_the_file(good_checkpoint, tmp_path):
    good, header = good_checkpoint
    X, y = blobs()
    cases = _damaged(good, header, tmp_path)
    assert len(cases) >= 20
    untouched = fresh()._flat_params.copy()
    for name, path in cases:
        model = fresh()
        with pytest.raises(CheckpointError) as info:
            model.fit(X, y, resume=path, **FIT)
        assert str(info.value).startswith(str(path)), name
        assert "\n" not in str(info.value)
        assert np.array_equal(model._flat_params, untouched), name  # nothing half-loaded
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        ck.load_checkpoint(tmp_path / "missing.npz")


def test_newer_checkpoint_version_is_refused(good_checkpoint, tmp_path):
    good, header = good_checkpoint
    newer = tmp_path / "newer.npz"
    _rewrite(good, newer, header=dict(header, version=ck.CHECKPOINT_VERSION + 1))
    with pytest.raises(CheckpointError, match=r"newer\.npz: written by a newer fastact"):
        ck.load_checkpoint(newer)


def test_model_files_newer_or_damaged_are_refused(tmp_path):
    path = tmp_path / "m.npz"
    fresh().save(path)
    with np.load(path) as data:
        header = json.loads(str(data["__header__"]))
    raw = path.read_bytes()
    cases = {"truncated": raw[: len(raw) // 2], "garbage": b"\x00" * 200, "empty": b""}
    for name, data in cases.items():
        (tmp_path / f"{name}.npz").write_bytes(data)
    _rewrite(path, tmp_path / "newer.npz", header=dict(header, version=99))
    _rewrite(path, tmp_path / "noversion.npz", header={"format": "fastact.nn.MLP",
                                                       "config": header["config"]})
    _rewrite(path, tmp_path / "noconfig.npz", header={"format": "fastact.nn.MLP",
                                                      "version": 1})
    _rewrite(path, tmp_path / "noparam.npz", drop=("layers.2.weight",))
    for name in [*cases, "newer", "noversion", "noconfig", "noparam"]:
        bad = tmp_path / f"{name}.npz"
        with pytest.raises(ValueError) as info:
            MLP.load(bad)
        assert str(info.value).startswith(str(bad)), name
    with pytest.raises(ValueError, match="newer fastact"):
        MLP.load(tmp_path / "newer.npz")


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    fresh().save(path)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError):
        MLP((6, 5, 3), seed=3).save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]


# ----------------------------------------------------------------------------
# The command line, in real processes: SIGKILL and SIGINT
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_idx(tmp_path_factory):
    """600 training and 100 test 8x8 images in MNIST format."""
    from fastact import datasets

    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("data")
    (root / "fashion-mnist").mkdir()
    files = datasets.get_spec("fashion-mnist").files

    def make(n):
        y = rng.integers(0, 10, size=n).astype(np.uint8)
        base = (np.arange(10)[:, None] * 25 + rng.integers(0, 20, size=(10, 64))) % 256
        x = (base[y] + rng.integers(0, 30, size=(n, 64))).clip(0, 255).astype(np.uint8)
        return x.reshape(n, 8, 8), y

    for (ri, rl), n in ((("train_images", "train_labels"), 600),
                        (("test_images", "test_labels"), 100)):
        x, y = make(n)
        datasets.write_idx(root / "fashion-mnist" / files[ri], x)
        datasets.write_idx(root / "fashion-mnist" / files[rl], y)
    return root


def _train_cmd(data, *extra):
    return [sys.executable, "-m", "fastact", "train", "--data-dir", str(data),
            "--no-download", "--hidden", "16", "--batch-size", "8", "--epochs", "3",
            "--activation", "prelu", "--seed", "3", "--threads", "1", "--no-progress",
            *extra]


def _sigint_default():
    # A shell without job control starts background jobs with SIGINT
    # ignored, and children inherit that; the CLI must see a real Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env.pop("PYTHONWARNINGS", None)
    return env


def _weights(path):
    model = MLP.load(path)
    return model._flat_params.copy()


def test_sigkill_at_random_moments_then_resume_gives_the_same_weights(small_idx, tmp_path):
    ref = tmp_path / "ref.npz"
    subprocess.run(_train_cmd(small_idx, "--save", str(ref)), check=True, env=_env(),
                   capture_output=True, timeout=120)
    reference = _weights(ref)
    ckpt, final = tmp_path / "ck.npz", tmp_path / "final.npz"
    # 68 steps per epoch, 204 in all; a checkpoint every 3 steps makes the
    # run last about a second here (each one is fsynced), so kills land
    # before, during and between checkpoint writes.
    args = ["--checkpoint", str(ckpt), "--checkpoint-every", "3", "--save", str(final)]
    # Kill moments are drawn relative to how long a whole checkpointing run
    # takes on this machine now (start-up included), so they stay spread
    # over the run whether the machine is idle or busy.
    started = time.monotonic()
    subprocess.run(_train_cmd(small_idx, *args), check=True, env=_env(),
                   capture_output=True, timeout=120)
    whole_run = time.monotonic() - started
    assert np.array_equal(_weights(final), reference)
    ckpt.unlink()
    final.unlink()
    rng = np.random.default_rng(20261128)
    kills, positions, completions = 0, [], 0
    deadline = time.monotonic() + max(90, 40 * whole_run)
    while kills < 24 and time.monotonic() < deadline:
        extra = ["--resume", str(ckpt)] if ckpt.exists() else []
        proc = subprocess.Popen(_train_cmd(small_idx, *args, *extra), env=_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            proc.wait(timeout=float(rng.uniform(0.25, 1.1)) * whole_run)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            kills += 1
        else:  # it finished before the kill: it must have the reference weights
            assert proc.returncode == 0, proc.stderr.read().decode()
            assert np.array_equal(_weights(final), reference)
            completions += 1
            ckpt.unlink()
            final.unlink()
            proc.stderr.close()
            continue
        proc.stderr.close()
        if ckpt.exists():  # the last checkpoint is always whole
            state = ck.load_checkpoint(ckpt).state
            positions.append(state.epoch * 68 + state.step)
        else:
            positions.append(0)
    assert kills >= 20, f"only {kills} kills in time"
    # The kill points are spread over the run, not bunched at its start.
    assert len(set(positions)) >= 5 and max(positions) > 68, positions
    # Finish the interrupted run and compare it with the uninterrupted one.
    extra = ["--resume", str(ckpt)] if ckpt.exists() else []
    done = subprocess.run(_train_cmd(small_idx, *args, *extra), env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert np.array_equal(_weights(final), reference)
    leftovers = [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    assert leftovers == []
    print(f"{kills} SIGKILLs, {completions} runs finished between them, "
          f"checkpoint positions {sorted(positions)}")


def test_sigint_stops_writes_checkpoint_and_exits_130(small_idx, tmp_path):
    ckpt = tmp_path / "ck.npz"
    # Enough epochs that the signal arrives long before the end.
    cmd = _train_cmd(small_idx, "--checkpoint", str(ckpt), "--checkpoint-every", "1000000")
    cmd[cmd.index("--epochs") + 1] = "5000"
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_sigint_default)
    assert "training samples" in proc.stdout.readline()
    assert proc.stdout.readline().startswith("epoch")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("fastact train: training interrupted at ")
    assert f"checkpoint written to {ckpt}" in err and "--resume" in err
    state = ck.load_checkpoint(ckpt).state
    assert 1 <= state.epoch < 5000
    # Without --checkpoint: the same exit, nothing written.
    cmd = _train_cmd(small_idx)
    cmd[cmd.index("--epochs") + 1] = "5000"
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_sigint_default)
    proc.stdout.readline()
    proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "no checkpoint written" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_sigint_then_resume_matches_uninterrupted_run(small_idx, tmp_path):
    ref, ckpt, final = tmp_path / "ref.npz", tmp_path / "ck.npz", tmp_path / "final.npz"
    cmd = _train_cmd(small_idx, "--save", str(ref))
    cmd[cmd.index("--epochs") + 1] = "30"
    subprocess.run(cmd, check=True, env=_env(), capture_output=True, timeout=120)
    cmd = _train_cmd(small_idx, "--checkpoint", str(ckpt), "--save", str(final))
    cmd[cmd.index("--epochs") + 1] = "30"
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_sigint_default)
    proc.stdout.readline()
    proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    if proc.returncode == 0:  # pragma: no cover - the machine was too fast
        pytest.skip("the run finished before SIGINT arrived")
    assert proc.returncode == 130, err
    assert not final.exists()
    done = subprocess.run(cmd + ["--resume", str(ckpt)], env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert np.array_equal(_weights(final), _weights(ref))


def test_cli_divergence_is_one_line_status_1(small_idx):
    proc = subprocess.run(_train_cmd(small_idx, "--optimizer", "sgd", "--lr", "1e30"),
                          env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("fastact train: error: training diverged")
    assert "epoch 1, step" in proc.stderr


def test_cli_resume_errors_are_one_line(small_idx, tmp_path):
    ckpt = tmp_path / "ck.npz"
    subprocess.run(_train_cmd(small_idx, "--checkpoint", str(ckpt)), check=True, env=_env(),
                   capture_output=True, timeout=120)
    for extra, needle in [(["--seed", "4"], "fit.seed"),
                          (["--activation", "relu"], "model.activation"),
                          (["--validation-split", "0.2"], "data.digest")]:
        proc = subprocess.run(_train_cmd(small_idx, "--resume", str(ckpt), *extra),
                              env=_env(), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.count("\n") == 1 and needle in proc.stderr
        assert proc.stderr.startswith(f"fastact train: error: {ckpt}: cannot resume")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04" + b"\x00" * 50)
    proc = subprocess.run(_train_cmd(small_idx, "--resume", str(garbage)), env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert str(garbage) in proc.stderr and "Traceback" not in proc.stderr
