"""The command line: usage errors (status 2), runtime errors (one line, status 1), outputs."""

import subprocess
import sys

import numpy as np
import pytest

from fastact.cli import main

BAD_ARGUMENTS = [
    # (argv, a piece of the message)
    ([], "required: COMMAND"),
    (["--bogus"], "required: COMMAND"),
    (["info", "--bogus"], "unrecognized arguments"),
    (["frobnicate"], "invalid choice"),
    (["info", "--verbose"], "unrecognized arguments"),
    (["info", "extra"], "unrecognized arguments"),
    (["bench", "--ops", "swish"], "unknown op 'swish'"),
    (["bench", "--ops", ","], "no op given"),
    (["bench", "--directions", "sideways"], "unknown direction 'sideways'"),
    (["bench", "--dtypes", "int8"], "unknown dtype 'int8'"),
    (["bench", "--sizes", "abc"], "not an integer or 2^K"),
    (["bench", "--sizes", "3"], "multiple of"),
    (["bench", "--sizes", "2^x"], "not an integer or 2^K"),
    (["bench", "--threads", "0"], "positive thread counts"),
    (["bench", "--threads", "1,x"], "positive thread counts"),
    (["bench", "--json"], "expected one argument"),
    (["train", "--epochs", "0"], "positive integer"),
    (["train", "--epochs", "two"], "positive integer"),
    (["train", "--batch-size", "-8"], "positive integer"),
    (["train", "--lr", "0"], "positive number"),
    (["train", "--lr=-1e-3"], "positive number"),
    (["train", "--lr", "nan"], "positive number"),
    (["train", "--lr", "inf"], "positive number"),
    (["train", "--lr", "fast"], "positive number"),
    (["train", "--momentum", "-0.5"], "number >= 0"),
    (["train", "--validation-split", "1"], "[0, 1)"),
    (["train", "--validation-split", "half"], "[0, 1)"),
    (["train", "--hidden", "0"], "positive"),
    (["train", "--hidden", "a,b"], "layer widths"),
    (["train", "--activation", "swish"], "invalid choice"),
    (["train", "--optimizer", "rmsprop"], "invalid choice"),
    (["train", "--dtype", "float16"], "invalid choice"),
    (["train", "--threads", "0"], "positive integer"),
    (["train", "--seed", "-1"], "non-negative integer"),
    (["train", "--seed", "x"], "non-negative integer"),
    (["train", "--checkpoint-every", "0", "--checkpoint", "c.npz"], "positive integer"),
    (["train", "--checkpoint-every", "5"], "--checkpoint-every needs --checkpoint"),
    (["train", "--resume"], "expected one argument"),
    (["train", "--unknown"], "unrecognized arguments"),
    (["train", "extra"], "unrecognized arguments"),
    (["compare", "--activations", "relu,swish"], "unknown activation(s) swish"),
    (["compare", "--activations", ","], "--activations is empty"),
    (["compare", "--activations", "relu,relu"], "lists one twice"),
    (["compare", "--seeds", "0"], "positive integer"),
    (["compare", "--lr", "-1"], "positive number"),
    (["compare", "--epochs", "1.5"], "positive integer"),
    (["compare", "--checkpoint", "c.npz"], "unrecognized arguments"),
]


@pytest.mark.parametrize("argv, needle", BAD_ARGUMENTS,
                         ids=[" ".join(a) or "(none)" for a, _ in BAD_ARGUMENTS])
def test_bad_arguments_give_usage_and_status_2(argv, needle, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.startswith("usage: fastact")
    assert needle in err
    assert "Traceback" not in err


@pytest.fixture
def empty_dirs(tmp_path, monkeypatch):
    from fastact import datasets

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIRS", [str(tmp_path / "nowhere")],
                        raising=False)
    return tmp_path


def _runtime_cases(tmp):
    (tmp / "a_file").write_text("x")
    nodata = ["--data-dir", str(tmp / "empty"), "--no-download", "--dataset", "mnist"]
    return [
        (["train", *nodata], "data set 'mnist' not found"),
        (["compare", *nodata, "--out", str(tmp / "out")], "data set 'mnist' not found"),
        (["train", "--resume", str(tmp / "missing.npz")], "missing.npz does not exist"),
        (["train", "--save", str(tmp / "no" / "dir" / "m.npz")], "is not a directory"),
        (["train", "--checkpoint", str(tmp / "no" / "c.npz")], "is not a directory"),
        (["compare", "--out", str(tmp / "a_file")], "cannot create the output directory"),
    ]


def test_runtime_errors_are_one_line_and_status_1(empty_dirs, capsys):
    for argv, needle in _runtime_cases(empty_dirs):
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 1, argv
        assert err.startswith(f"fastact {argv[0]}: error: "), (argv, err)
        assert err.count("\n") == 1 and needle in err, (argv, err)


def test_unexpected_exception_is_one_line(monkeypatch, capsys):
    import fastact

    def boom():
        raise RuntimeError("something\nunforeseen")

    monkeypatch.setattr(fastact, "show_config", boom)
    assert main(["info"]) == 1
    err = capsys.readouterr().err
    assert err == "fastact info: error: RuntimeError: something unforeseen\n"


def test_process_exit_statuses(tmp_path):
    """The installed entry point: status 2 for usage, 1 for runtime, no traceback."""
    usage = subprocess.run([sys.executable, "-m", "fastact", "train", "--lr", "-1"],
                           capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "usage:" in usage.stderr
    runtime = subprocess.run([sys.executable, "-m", "fastact", "train", "--resume",
                              str(tmp_path / "nothing.npz")],
                             capture_output=True, text=True, timeout=60)
    assert runtime.returncode == 1 and runtime.stderr.count("\n") == 1
    assert "Traceback" not in usage.stderr + runtime.stderr


# ----------------------------------------------------------------------------
# fastact compare's outputs
# ----------------------------------------------------------------------------


def _runs(n_epochs, n_seeds, activations=("relu", "gelu")):
    rng = np.random.default_rng(0)
    runs = {}
    for act in activations:
        runs[act] = []
        for seed in range(n_seeds):
            hist = {"loss": list(rng.random(n_epochs)),
                    "accuracy": list(rng.random(n_epochs)),
                    "val_loss": list(rng.random(n_epochs)),
                    "val_accuracy": list(rng.random(n_epochs)),
                    "epoch_time": list(rng.random(n_epochs))}
            runs[act].append({"seed": seed, "test_accuracy": float(rng.random()),
                              "test_loss": 1.0, "history": hist})
    return runs


def _meta(n_seeds, n_epochs):
    return {"dataset": "fashion-mnist", "sizes": [784, 128, 10], "optimizer": "adam",
            "lr": 1e-3, "momentum": 0.0, "batch_size": 32, "epochs": n_epochs,
            "validation_split": 0.1, "seeds": list(range(n_seeds)), "dtype": "float32",
            "threads": 2, "n_train": 60000, "n_test": 10000, "fastact": "0",
            "numpy": np.__version__, "python": "3", "machine": "x86_64"}


@pytest.mark.parametrize("n_epochs", [1, 2, 3, 12, 50])
def test_curves_have_whole_number_epoch_ticks(n_epochs, tmp_path):
    pytest.importorskip("matplotlib")
    from fastact.nn.commands import plot_curves

    fig = plot_curves(_runs(n_epochs, 2), _meta(2, n_epochs), tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    for ax in fig.axes:
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert ticks, ax.get_title()
        assert all(float(t).is_integer() for t in ticks), ticks
        assert min(ticks) >= 1 and max(ticks) <= n_epochs
        if n_epochs <= 3:
            assert ticks == list(range(1, n_epochs + 1))
        labels = [label.get_text() for label in ax.get_xticklabels()]
        assert not any("." in text for text in labels), labels


def test_results_with_one_seed_show_no_spread():
    from fastact.nn.commands import results_markdown, summarize

    runs = _runs(1, 1)
    summary = summarize(runs)
    assert summary["relu"]["test_accuracy_std"] is None
    md = results_markdown(summary, _meta(1, 1))
    assert "±" not in md
    assert "test accuracy (n=1)" in md
    value = f"{100 * runs['relu'][0]['test_accuracy']:.2f} %"
    assert f"| relu | {value} |" in md


def test_results_with_several_seeds_show_mean_and_std():
    import statistics

    from fastact.nn.commands import results_markdown, summarize

    runs = _runs(2, 3)
    md = results_markdown(summarize(runs), _meta(3, 2))
    acc = [100 * r["test_accuracy"] for r in runs["gelu"]]
    assert (f"| gelu | {statistics.fmean(acc):.2f} ± {statistics.stdev(acc):.2f} % |"
            in md)
    assert "(mean ± std)" in md and "over the 3 seeds" in md
