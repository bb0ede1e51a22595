"""``fastact train`` and ``fastact compare``: the trainer on the command line.

``fastact train`` trains one MLP on an MNIST-format data set and reports
the test score; ``fastact compare`` trains the same network with each of
several activations over several seeds and writes ``results.md`` (a table)
and ``curves.png`` (validation accuracy and training loss per epoch).

tqdm (progress bars) and matplotlib (the plot) are the optional ``train``
extra: ``pip install 'fastact[train]'``; they are imported when a command
runs, never when the command line is built.
"""

import contextlib
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

__all__ = ["register", "run_train", "run_compare", "CommandError"]

DEFAULT_ACTIVATIONS = "relu,leaky_relu,prelu,gelu"


class CommandError(Exception):
    """A problem to report in one line, without a traceback."""


# ----------------------------------------------------------------------------
# Argument parsing
# ----------------------------------------------------------------------------


def _positive(text):
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _hidden(text):
    import argparse

    try:
        sizes = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--hidden takes layer widths like 128 or 256,128, got {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--hidden widths must be positive, got {text!r}")
    return sizes


def _number(text, what, ok):
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not np.isfinite(value) or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _positive_float(text):
    return _number(text, "a positive number", lambda v: v > 0)


def _nonnegative_float(text):
    return _number(text, "a number >= 0", lambda v: v >= 0)


def _seed(text):
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _activation_list(text):
    import argparse

    try:
        return _parse_activations(text)
    except CommandError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _fraction(text):
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def _add_common(parser):
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default="fashion-mnist",
                      help="registered MNIST-format data set (default: %(default)s)")
    data.add_argument("--data-dir", default=None, metavar="DIR",
                      help="directory searched first for the four IDX files")
    data.add_argument("--no-download", action="store_true",
                      help="fail instead of downloading a missing data set")
    data.add_argument("--validation-split", type=_fraction, default=0.1, metavar="F",
                      help="fraction of the training set, taken from its end, used "
                           "for validation (default: %(default)s)")
    net = parser.add_argument_group("network and training")
    net.add_argument("--hidden", type=_hidden, default=[128], metavar="N[,N...]",
                     help="hidden layer widths (default: 128)")
    net.add_argument("--epochs", type=_positive, default=10, help="default: %(default)s")
    net.add_argument("--batch-size", type=_positive, default=32, help="default: %(default)s")
    net.add_argument("--optimizer", choices=("adam", "sgd"), default="adam",
                     help="default: %(default)s (PyTorch's defaults)")
    net.add_argument("--lr", type=_positive_float, default=1e-3,
                     help="learning rate (default: %(default)s)")
    net.add_argument("--momentum", type=_nonnegative_float, default=0.0,
                     help="SGD momentum (default: %(default)s)")
    net.add_argument("--dtype", choices=("float32", "float64", "bfloat16"), default="float32",
                     help="bfloat16: activations stored in bfloat16, weights and optimiser "
                          "in float32 (needs ml_dtypes) (default: %(default)s)")
    net.add_argument("--threads", type=_positive, default=None,
                     help="threads for fastact's kernels and BLAS (default: unchanged)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (it is off anyway when stderr is not a terminal)")


def register(subparsers):
    """Add the ``train`` and ``compare`` subcommands to an argparse subparsers object."""
    from .layers import ACTIVATIONS

    train = subparsers.add_parser(
        "train", help="train an MLP on an MNIST-format data set",
        description="Train a multi-layer perceptron (softmax output) on an MNIST-format "
                    "data set with fastact's kernels, then score it on the test set.",
    )
    _add_common(train)
    train.add_argument("--activation", default="relu", choices=ACTIVATIONS,
                       help="default: %(default)s")
    train.add_argument("--seed", type=_seed, default=0, help="default: %(default)s")
    train.add_argument("--save", metavar="FILE.npz", default=None,
                       help="save the trained model (fastact.nn.MLP.load reads it)")
    ckpt = train.add_argument_group(
        "checkpoints", "Resuming gives bit-identically the weights of an uninterrupted run. "
                       "Ctrl-C stops at the end of the current step, writes the checkpoint "
                       "and exits with status 130.")
    ckpt.add_argument("--checkpoint", metavar="FILE", default=None,
                      help="write the training state here (atomically) at the end of every "
                           "epoch, or every --checkpoint-every steps, and at the end")
    ckpt.add_argument("--checkpoint-every", type=_positive, default=None, metavar="STEPS",
                      help="training steps between checkpoints (needs --checkpoint)")
    ckpt.add_argument("--resume", metavar="FILE", default=None,
                      help="continue from this checkpoint; the data set, network, seed and "
                           "training settings must be those of the run that wrote it "
                           "(--epochs may be larger)")
    train.set_defaults(func=run_train, parser=train)

    compare = subparsers.add_parser(
        "compare", help="compare activations: train one network per activation and seed",
        description="Train the same network with each activation over several seeds and "
                    "write results.md (test accuracy mean ± std, final validation "
                    "accuracy, training loss, seconds per epoch) and curves.png.",
    )
    _add_common(compare)
    compare.add_argument("--activations", type=_activation_list,
                         default=_parse_activations(DEFAULT_ACTIVATIONS),
                         help="comma-separated, from: " + ", ".join(ACTIVATIONS)
                              + f" (default: {DEFAULT_ACTIVATIONS})")
    compare.add_argument("--seeds", type=_positive, default=3,
                         help="number of seeds, 0..N-1 (default: %(default)s)")
    compare.add_argument("--out", default="results", metavar="DIR",
                         help="output directory (default: %(default)s)")
    compare.set_defaults(func=run_compare)


# ----------------------------------------------------------------------------
# Shared helpers
# ----------------------------------------------------------------------------


def _error(command, message):
    print(f"fastact {command}: error: {message}", file=sys.stderr)
    return 1


@contextlib.contextmanager
def _threads(n):
    """Limit fastact's and the BLAS library's threads to n (None: unchanged)."""
    if n is None:
        yield
        return
    import fastact

    old = fastact.get_num_threads()
    fastact.set_num_threads(n)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            print("fastact: warning: threadpoolctl is not installed, so the BLAS "
                  "library's threads are not limited", file=sys.stderr)
            yield
        else:
            with threadpool_limits(limits=n):
                yield
    finally:
        fastact.set_num_threads(old)


def _progress_factory(args):
    """A tqdm factory for MLP.fit(progress=...), or None."""
    if args.no_progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None

    def make(total, desc):
        # disable=None: quiet when stderr is not a terminal.
        return tqdm(total=total, desc=desc, unit="batch", leave=False, disable=None,
                    file=sys.stderr, dynamic_ncols=True)

    return make


def _load_data(args):
    """(X_train, y_train, X_test, y_test) as float arrays in [0, 1] and labels."""
    from fastact import datasets

    try:
        data = datasets.load(args.dataset, path=args.data_dir, download=not args.no_download)
    except (datasets.IDXError, datasets.DatasetError, FileNotFoundError, OSError,
            ValueError, EOFError) as exc:
        raise CommandError(str(exc)) from None
    # A bfloat16 model takes float32 inputs (only its activations are 16-bit).
    dtype = np.dtype(np.float32 if args.dtype == "bfloat16" else args.dtype)
    return (datasets.to_float(data.x_train, dtype), data.y_train,
            datasets.to_float(data.x_test, dtype), data.y_test)


def _sizes(args, X, y, y_test):
    classes = int(max(y.max(), y_test.max())) + 1
    return [X.shape[1], *args.hidden, max(classes, 2)]


def _epoch_line(epoch, epochs, logs):
    parts = [f"epoch {epoch + 1:>{len(str(epochs))}}/{epochs}",
             f"loss {logs['loss']:.4f}", f"acc {logs['accuracy']:.4f}"]
    if "val_loss" in logs:
        parts += [f"val_loss {logs['val_loss']:.4f}", f"val_acc {logs['val_accuracy']:.4f}"]
    parts.append(f"{logs['epoch_time']:.2f} s")
    return "  ".join(parts)


def _fit_kwargs(args):
    return dict(epochs=args.epochs, batch_size=args.batch_size,
                validation_split=args.validation_split, optimizer=args.optimizer,
                lr=args.lr, momentum=args.momentum)


# ----------------------------------------------------------------------------
# fastact train
# ----------------------------------------------------------------------------


def _run(name, body, args):
    """Run a command's body; report expected failures in one line, exit status 1."""
    try:
        return body(args)
    except (CommandError, ValueError, TypeError, FloatingPointError, OSError) as exc:
        return _error(name, _one_line(exc))


def _one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__


def run_train(args):
    """Entry point of ``fastact train``; returns the exit status."""
    return _run("train", _train, args)


def _train(args):
    from .model import MLP, TrainingInterrupted

    if args.checkpoint_every is not None and args.checkpoint is None:
        args.parser.error("--checkpoint-every needs --checkpoint FILE")
    if args.resume is not None and not os.path.isfile(args.resume):
        raise CommandError(f"cannot resume: {args.resume} does not exist or is not a file")
    for option, path in (("--save", args.save), ("--checkpoint", args.checkpoint)):
        if path:
            directory = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(directory):
                raise CommandError(f"cannot write {option} {path}: {directory} is not a "
                                   "directory")
    X, y, X_test, y_test = _load_data(args)
    sizes = _sizes(args, X, y, y_test)
    with _threads(args.threads):
        model = MLP(sizes, args.activation, dtype=args.dtype, seed=args.seed)
        print(f"{args.dataset}: {X.shape[0]} training samples "
              f"({int(X.shape[0] * args.validation_split)} held out for validation), "
              f"{X_test.shape[0]} test samples; network {'-'.join(map(str, sizes))}, "
              f"{args.activation}, {args.optimizer} lr {args.lr:g}, batch {args.batch_size}",
              flush=True)
        if args.resume:
            print(f"resuming from {args.resume}", flush=True)
        try:
            model.fit(X, y, seed=args.seed, progress=_progress_factory(args),
                      on_epoch_end=lambda e, logs: print(_epoch_line(e, args.epochs, logs),
                                                         flush=True),
                      checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every,
                      resume=args.resume, **_fit_kwargs(args))
        except TrainingInterrupted as exc:
            hint = f" (continue with --resume {args.checkpoint})" if exc.checkpoint else ""
            print(f"fastact train: {exc}{hint}", file=sys.stderr, flush=True)
            return 130
        test = model.evaluate(X_test, y_test)
    print(f"test loss {test['loss']:.4f}  test accuracy {test['accuracy']:.4f}")
    if args.save:
        model.save(args.save)
        print(f"saved the model to {args.save}")
    return 0


# ----------------------------------------------------------------------------
# fastact compare
# ----------------------------------------------------------------------------


def run_compare(args):
    """Entry point of ``fastact compare``; returns the exit status."""
    return _run("compare", _compare, args)


def _parse_activations(text):
    from .layers import ACTIVATIONS

    names = [a.strip().lower().replace("-", "_") for a in str(text).split(",") if a.strip()]
    if not names:
        raise CommandError("--activations is empty")
    unknown = [a for a in names if a not in ACTIVATIONS]
    if unknown:
        raise CommandError(f"unknown activation(s) {', '.join(unknown)}; "
                           f"choose from {', '.join(ACTIVATIONS)}")
    if len(set(names)) != len(names):
        raise CommandError(f"--activations lists one twice: {text}")
    return names


def _compare(args):
    from .model import MLP

    activations = args.activations
    try:  # fail before training, not after minutes of it
        import matplotlib  # noqa: F401
    except ImportError:
        raise CommandError("matplotlib is needed for curves.png: "
                           "pip install 'fastact[train]'") from None
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"cannot create the output directory {args.out}: {exc}") from None
    X, y, X_test, y_test = _load_data(args)
    sizes = _sizes(args, X, y, y_test)
    progress = _progress_factory(args)
    runs = {a: [] for a in activations}
    with _threads(args.threads):
        import fastact

        threads = fastact.get_num_threads()
        for act in activations:
            for seed in range(args.seeds):
                model = MLP(sizes, act, dtype=args.dtype, seed=seed)
                history = model.fit(X, y, seed=seed, progress=progress, **_fit_kwargs(args))
                test = model.evaluate(X_test, y_test)
                run = {"seed": seed, "test_accuracy": test["accuracy"],
                       "test_loss": test["loss"], "history": history}
                runs[act].append(run)
                last = {k: v[-1] for k, v in history.items()}
                val = (f"  val_acc {last['val_accuracy']:.4f}"
                       if "val_accuracy" in last else "")
                print(f"{act:<10} seed {seed}: loss {last['loss']:.4f}{val}  "
                      f"test_acc {test['accuracy']:.4f}  "
                      f"{statistics.median(history['epoch_time']):.2f} s/epoch", flush=True)
    meta = {
        "dataset": args.dataset, "sizes": sizes, "optimizer": args.optimizer, "lr": args.lr,
        "momentum": args.momentum, "batch_size": args.batch_size, "epochs": args.epochs,
        "validation_split": args.validation_split, "seeds": list(range(args.seeds)),
        "dtype": args.dtype, "threads": threads, "n_train": int(X.shape[0]),
        "n_test": int(X_test.shape[0]), "fastact": _version(),
        "numpy": np.__version__, "python": platform.python_version(),
        "machine": platform.machine(),
    }
    summary = summarize(runs)
    md_path = os.path.join(args.out, "results.md")
    with open(md_path, "w", encoding="utf-8") as handle:
        handle.write(results_markdown(summary, meta))
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as handle:
        json.dump({"meta": meta, "summary": summary, "runs": runs}, handle, indent=1)
    png_path = os.path.join(args.out, "curves.png")
    plot_curves(runs, meta, png_path)
    print()
    print(results_table(summary))
    print(f"\nwrote {md_path}, {png_path} and results.json")
    return 0


def _version():
    from fastact import __version__

    return __version__


def _mean_std(values):
    """Mean and sample standard deviation; the deviation is None for one value."""
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else None
    return mean, std


def summarize(runs):
    """Per activation: means and standard deviations over the seeds.

    ``test_accuracy_std`` is None for a single seed: one run says nothing
    about the spread.
    """
    summary = {}
    for act, seeds in runs.items():
        test_mean, test_std = _mean_std([r["test_accuracy"] for r in seeds])
        row = {"test_accuracy_mean": test_mean, "test_accuracy_std": test_std,
               "seeds": len(seeds),
               "train_loss": statistics.fmean(r["history"]["loss"][-1] for r in seeds),
               "seconds_per_epoch": statistics.median(
                   t for r in seeds for t in r["history"]["epoch_time"])}
        if "val_accuracy" in seeds[0]["history"]:
            row["val_accuracy"] = statistics.fmean(r["history"]["val_accuracy"][-1]
                                                   for r in seeds)
        summary[act] = row
    return summary


def results_table(summary):
    """The Markdown table of :func:`summarize`'s result.

    With one seed per activation the accuracy is shown alone: a "± 0.00"
    would claim a spread that one run cannot measure.
    """
    spread = any(row["test_accuracy_std"] is not None for row in summary.values())
    title = "test accuracy (mean ± std)" if spread else "test accuracy (n=1)"
    lines = [f"| activation | {title} | final val accuracy | final train loss | s/epoch |",
             "|---|---|---|---|---|"]
    for act, row in summary.items():
        val = f"{100 * row['val_accuracy']:.2f} %" if "val_accuracy" in row else "–"
        test = f"{100 * row['test_accuracy_mean']:.2f}"
        if row["test_accuracy_std"] is not None:
            test += f" ± {100 * row['test_accuracy_std']:.2f}"
        elif spread:
            test += " (n=1)"
        lines.append(f"| {act} | {test} % | {val} | {row['train_loss']:.4f} | "
                     f"{row['seconds_per_epoch']:.3f} |")
    return "\n".join(lines)


def results_markdown(summary, meta):
    """The whole results.md text."""
    seeds = meta["seeds"]
    n_val = int(meta["n_train"] * meta["validation_split"])
    opt = meta["optimizer"].capitalize() if meta["optimizer"] == "adam" else "SGD"
    if meta["optimizer"] == "sgd":
        opt += f" (momentum {meta['momentum']:g})"
    return "\n".join([
        f"# Activation comparison on {meta['dataset']}",
        "",
        f"Network {'-'.join(map(str, meta['sizes']))}, inputs scaled to [0, 1], "
        f"{opt} lr {meta['lr']:g}, batch {meta['batch_size']}, {meta['epochs']} "
        f"epoch{'s' if meta['epochs'] != 1 else ''}, "
        f"{meta['dtype']}; validation: the last {n_val} of {meta['n_train']} training "
        f"samples; test: {meta['n_test']} samples.  Seeds {', '.join(map(str, seeds))} "
        f"(each seeds the initial weights and the batch order).",
        "",
        results_table(summary),
        "",
        (f"Test accuracy: mean ± sample standard deviation over the {len(seeds)} seeds.  "
         if len(seeds) > 1 else
         "Test accuracy of the one seed (one run measures no seed-to-seed spread).  ")
        + "Final validation accuracy and training loss (mean over the last epoch's batches): "
        "means over the seeds, after the last epoch.  s/epoch: median over all epochs "
        "and seeds of the time spent shuffling and in training steps (validation "
        f"excluded), with {meta['threads']} thread(s) -- wall-clock time, so it depends "
        "on what else the machine was doing.",
        "",
        f"fastact {meta['fastact']}, NumPy {meta['numpy']}, Python {meta['python']}, "
        f"{meta['machine']}, {time.strftime('%Y-%m-%d')}.",
        "",
        "![validation accuracy and training loss per epoch](curves.png)",
        "",
    ])


def plot_curves(runs, meta, path):
    """Validation accuracy and training loss per epoch, one line per activation.

    Writes the plot to ``path`` and returns the matplotlib Figure.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax_val, ax_loss = fig.subplots(1, 2)
    for act, seeds in runs.items():
        hist = [r["history"] for r in seeds]
        epochs = np.arange(1, len(hist[0]["loss"]) + 1)
        loss = np.array([h["loss"] for h in hist])
        (line,) = ax_loss.plot(epochs, loss.mean(axis=0), marker="o", ms=3, label=act)
        if len(hist) > 1:
            ax_loss.fill_between(epochs, loss.min(axis=0), loss.max(axis=0),
                                 color=line.get_color(), alpha=0.15)
        if "val_accuracy" in hist[0]:
            val = 100 * np.array([h["val_accuracy"] for h in hist])
            ax_val.plot(epochs, val.mean(axis=0), marker="o", ms=3, label=act,
                        color=line.get_color())
            if len(hist) > 1:
                ax_val.fill_between(epochs, val.min(axis=0), val.max(axis=0),
                                    color=line.get_color(), alpha=0.15)
    ax_val.set(title="validation accuracy", xlabel="epoch", ylabel="accuracy (%)")
    ax_loss.set(title="training loss", xlabel="epoch", ylabel="mean cross-entropy")
    n_epochs = max(len(r["history"]["loss"]) for seeds in runs.values() for r in seeds)
    for ax in (ax_val, ax_loss):
        ax.grid(True, alpha=0.3)
        ax.legend()
        # Epochs are whole numbers: half an epoch either side keeps every
        # tick on an integer (matplotlib's default margins put a one-epoch
        # run's view at 0.96..1.04, where only fractional ticks fit).
        ax.set_xlim(0.5, n_epochs + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    n = len(meta["seeds"])
    fig.suptitle(f"{meta['dataset']}, {'-'.join(map(str, meta['sizes']))}: "
                 + (f"mean over {n} seeds (band: min-max)" if n > 1 else "one seed"))
    fig.savefig(path, dpi=120)
    return fig
