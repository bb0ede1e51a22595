#!/usr/bin/env python
"""Side-by-side benchmark: fastact.nn against PyTorch CPU on the same MLP.

Both sides train the identical network (784-128-10 by default) from the
*same initial weights*, with the same optimiser (Adam, lr 1e-3, PyTorch's
defaults; PyTorch with ``fused=True``, its fastest CPU Adam), batch size and
*data order* (PyTorch is fed the permutations fastact's trainer draws from
``fastact.nn.shuffle_rng(seed)``), then both are scored on the test set.

Reported:

* test accuracy after ``--epochs`` epochs, mean ± std over ``--seeds`` seeds,
  per activation, and the difference in percentage points;
* seconds per epoch -- shuffling (drawing the permutation) plus the training
  steps, validation excluded -- median over every epoch run, at each thread
  count of ``--threads`` (BLAS, fastact and PyTorch threads all limited).

At the first thread count the epochs of the two frameworks alternate in one
process, so background load hits both alike; at the other thread counts each
framework is timed alone in its own process (see ``worker``).  Still,
wall-clock timings on a shared machine are noisy: the script records
the load average before and after and warns when the machine was not idle
(``--max-load``; ``--wait`` seconds to wait for it to become idle first).

PyTorch is an optional, benchmark-only dependency (``pip install
torch==2.13.0``).  Example (the run whose table is in docs/trainer.md)::

    python tools/compare_torch_mlp.py --epochs 10 --seeds 3 --threads 1,2 \\
        --timing-epochs 3 --out results/torch_comparison.md
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

try:  # run from a source checkout (built in place) without installing
    import fastact  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--activations", default="relu,leaky_relu,prelu,gelu")
    p.add_argument("--epochs", type=int, default=10,
                   help="epochs of the accuracy runs (at the first thread count)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", default="1,2",
                   help="thread counts to time; the accuracy runs use the first")
    p.add_argument("--timing-epochs", type=int, default=2,
                   help="epochs per activation and framework at the other thread counts")
    p.add_argument("--no-fused-baseline", action="store_true",
                   help="skip timing PyTorch's default (non-fused) Adam")
    p.add_argument("--max-load", type=float, default=0.5,
                   help="1-minute load average above which the machine counts as busy")
    p.add_argument("--wait", type=float, default=0.0,
                   help="seconds to wait for the machine to become idle before starting")
    p.add_argument("--out", default=None, help="write the Markdown report here (and .json)")
    p.add_argument("--worker", choices=("fastact", "torch"), default=None,
                   help=argparse.SUPPRESS)  # internal: time one framework in this process
    return p.parse_args(argv)


# ----------------------------------------------------------------------------
# Machine state
# ----------------------------------------------------------------------------


def load_average():
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - not on Windows
        return float("nan")


def wait_until_idle(max_load, wait):
    """Wait up to ``wait`` seconds for the load average to drop; return it."""
    deadline = time.monotonic() + wait
    load = load_average()
    while load > max_load and time.monotonic() < deadline:
        time.sleep(5)
        load = load_average()
    if load > max_load:
        print(f"warning: the machine is not idle (1-min load average {load:.2f} > "
              f"{max_load} on {os.cpu_count()} CPUs): timings will be noisy",
              file=sys.stderr)
    return load


class Threads:
    """Limit BLAS, fastact and (if torch) PyTorch threads to n inside a with block."""

    def __init__(self, n, torch=True):
        self.n, self.use_torch = n, torch

    def __enter__(self):
        from threadpoolctl import threadpool_limits

        import fastact

        self._limits = threadpool_limits(limits=self.n)
        self._old = [fastact.get_num_threads()]
        fastact.set_num_threads(self.n)
        if self.use_torch:
            import torch

            self._old.append(torch.get_num_threads())
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        import fastact

        fastact.set_num_threads(self._old[0])
        if self.use_torch:
            import torch

            torch.set_num_threads(self._old[1])
        self._limits.restore_original_limits()


# ----------------------------------------------------------------------------
# The two trainers
# ----------------------------------------------------------------------------


def torch_model(fa_model):
    """A torch.nn.Sequential with exactly fa_model's (initial) weights."""
    import torch
    from torch import nn

    from fastact.nn import GELU, Dense, LeakyReLU, PReLU, ReLU

    modules = []
    for layer in fa_model.layers:
        if isinstance(layer, Dense):
            lin = nn.Linear(layer.in_features, layer.out_features)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.weight.T)))
                lin.bias.copy_(torch.from_numpy(layer.bias.copy()))
            modules.append(lin)
        elif isinstance(layer, ReLU):
            modules.append(nn.ReLU())
        elif isinstance(layer, LeakyReLU):
            modules.append(nn.LeakyReLU(layer.negative_slope))
        elif isinstance(layer, PReLU):
            act = nn.PReLU(layer.num_parameters)
            with torch.no_grad():
                act.weight.copy_(torch.from_numpy(layer.weight.copy()))
            modules.append(act)
        elif isinstance(layer, GELU):
            modules.append(nn.GELU(approximate=layer.approximate))
        else:  # pragma: no cover
            raise TypeError(f"no PyTorch counterpart for {layer!r}")
    return nn.Sequential(*modules)


class TorchTrainer:
    def __init__(self, fa_model, X, y, batch_size, lr, seed, fused=True):
        import torch

        self.torch = torch
        self.model = torch_model(fa_model)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr, fused=fused)
        self.X = torch.from_numpy(X)
        self.y = torch.from_numpy(y.astype(np.int64))
        self.batch_size = batch_size
        from fastact.nn import shuffle_rng

        self.rng = shuffle_rng(seed)  # the very orders fastact's fit draws

    def epoch(self):
        """One epoch; returns (seconds, mean training loss)."""
        import torch.nn.functional as F

        torch, model, opt, bs = self.torch, self.model, self.opt, self.batch_size
        n = self.X.shape[0]
        t0 = time.perf_counter()
        perm = torch.from_numpy(self.rng.permutation(n))
        total = 0.0
        for start in range(0, n, bs):
            idx = perm[start:start + bs]
            xb = self.X.index_select(0, idx)
            yb = self.y.index_select(0, idx)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * idx.shape[0]
        return time.perf_counter() - t0, total / n

    def accuracy(self, X, y):
        torch = self.torch
        with torch.no_grad():
            pred = self.model(torch.from_numpy(X)).argmax(dim=1).numpy()
        return float(np.mean(pred == y))


class FastactTrainer:
    """Runs fastact's MLP.fit one epoch at a time with one persistent optimiser."""

    def __init__(self, fa_model, X, y, batch_size, lr, seed):
        from fastact.nn import Adam, shuffle_rng

        self.model = fa_model
        self.X, self.y = X, y
        self.batch_size = batch_size
        self.opt = Adam(fa_model.parameter_pairs(), lr=lr)
        self._rng = shuffle_rng(seed)

    def epoch(self):
        # One epoch per fit call, continuing one generator (as fit(seed) would).
        h = self.model.fit(self.X, self.y, epochs=1, batch_size=self.batch_size,
                           validation_split=0, optimizer=self.opt, seed=self._rng)
        return h["epoch_time"][0], h["loss"][0]

    def accuracy(self, X, y):
        return self.model.evaluate(X, y)["accuracy"]


# ----------------------------------------------------------------------------
# Experiment
# ----------------------------------------------------------------------------


def load_data(args):
    from fastact import datasets

    d = datasets.load(args.dataset, path=args.data_dir)
    X = datasets.to_float(d.x_train)
    X_test = datasets.to_float(d.x_test)
    n_train = X.shape[0] - X.shape[0] // 10  # the trainer's validation split: last 10 %
    return X[:n_train], d.y_train[:n_train].astype(np.int32), X_test, d.y_test


def worker(args):
    """Time ``--timing-epochs`` epochs of one framework alone in this process.

    Multi-threaded timings run each framework in its own process: in one
    process, the idle OpenMP/BLAS threads of one framework keep spinning
    while the other one works, which on a 2-CPU machine slowed both down
    by an order of magnitude.
    """
    from fastact.nn import MLP

    X, y, _X_test, _y_test = load_data(args)
    n = int(args.threads.split(",")[0])
    act = args.activations.split(",")[0]
    fa_model = MLP((X.shape[1], args.hidden, 10), act, seed=0)
    with Threads(n, torch=args.worker == "torch"):
        if args.worker == "torch":
            trainer = TorchTrainer(fa_model, X, y, args.batch_size, args.lr, 0)
        else:
            trainer = FastactTrainer(fa_model, X, y, args.batch_size, args.lr, 0)
        times = [trainer.epoch()[0] for _ in range(args.timing_epochs)]
    print(json.dumps(times))
    return 0


def time_in_subprocess(framework, act, n, args):
    import subprocess

    cmd = [sys.executable, os.path.abspath(__file__), "--worker", framework,
           "--activations", act, "--threads", str(n), "--timing-epochs",
           str(args.timing_epochs), "--dataset", args.dataset, "--hidden", str(args.hidden),
           "--batch-size", str(args.batch_size), "--lr", str(args.lr)]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def pair(act, seed, X, y, args):
    from fastact.nn import MLP

    fa_model = MLP((X.shape[1], args.hidden, 10), act, seed=seed)
    th = TorchTrainer(fa_model, X, y, args.batch_size, args.lr, seed)  # copies the init first
    fa = FastactTrainer(fa_model, X, y, args.batch_size, args.lr, seed)
    return fa, th


def make_meta(args, X, threads, load_before):
    import torch

    import fastact

    load_after = load_average()
    meta = {
        "dataset": args.dataset, "hidden": args.hidden, "batch_size": args.batch_size,
        "lr": args.lr, "epochs": args.epochs, "seeds": args.seeds, "threads": threads,
        "timing_epochs": args.timing_epochs, "n_train": int(X.shape[0]),
        "load_before": load_before, "load_after": load_after, "cpus": os.cpu_count(),
        "fastact": fastact.__version__, "torch": torch.__version__, "numpy": np.__version__,
        "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M"),
        "max_load": args.max_load,
    }
    return meta


def run(args, emit):
    import torch

    import fastact

    acts = [a.strip() for a in args.activations.split(",") if a.strip()]
    threads = [int(t) for t in args.threads.split(",")]
    X, y, X_test, y_test = load_data(args)
    load_before = wait_until_idle(args.max_load, args.wait)
    acc = {a: {"fastact": [], "torch": []} for a in acts}
    times = {}  # (threads, act) -> {"fastact": [...], "torch": [...]}

    with Threads(threads[0]):
        for act in acts:
            t = times.setdefault((threads[0], act), {"fastact": [], "torch": []})
            for seed in range(args.seeds):
                fa, th = pair(act, seed, X, y, args)
                for _ in range(args.epochs):  # alternate, so noise hits both
                    for name, trainer in (("fastact", fa), ("torch", th)):
                        t[name].append(trainer.epoch()[0])
                acc[act]["fastact"].append(fa.accuracy(X_test, y_test))
                acc[act]["torch"].append(th.accuracy(X_test, y_test))
                print(f"{act:<10} seed {seed}: test acc fastact {acc[act]['fastact'][-1]:.4f} "
                      f"torch {acc[act]['torch'][-1]:.4f}; s/epoch fastact "
                      f"{statistics.median(t['fastact'][-args.epochs:]):.3f} torch "
                      f"{statistics.median(t['torch'][-args.epochs:]):.3f}", flush=True)
        baseline = []
        if not args.no_fused_baseline:  # PyTorch's default Adam, for orientation
            fa, th = pair(acts[0], 0, X, y, args)
            th.opt = torch.optim.Adam(th.model.parameters(), lr=args.lr)
            for _ in range(max(2, args.timing_epochs)):
                baseline.append(th.epoch()[0])

    emit(make_meta(args, X, threads, load_before), acc, times, baseline)
    for n in threads[1:]:
        for act in acts:  # each framework alone in a fresh process (see worker)
            t = times.setdefault((n, act), {"fastact": [], "torch": []})
            for name in ("fastact", "torch"):
                t[name] += time_in_subprocess(name, act, n, args)
            if True:
                emit(make_meta(args, X, threads, load_before), acc, times, baseline)
                print(f"{act:<10} {n} threads: s/epoch fastact "
                      f"{statistics.median(t['fastact']):.3f} torch "
                      f"{statistics.median(t['torch']):.3f}", flush=True)
    emit(make_meta(args, X, threads, load_before), acc, times, baseline)
    return make_meta(args, X, threads, load_before), acc, times, baseline


def _ms(values):
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


def report(meta, acc, times, baseline):
    t1 = meta["threads"][0]
    lines = [
        f"fastact.nn vs PyTorch {meta['torch']} CPU on {meta['dataset']}: "
        f"784-{meta['hidden']}-10, Adam lr {meta['lr']:g} (PyTorch: fused=True), "
        f"batch {meta['batch_size']}, {meta['n_train']} training samples, same initial "
        f"weights and batch order on both sides; {meta['date']}, fastact {meta['fastact']}, "
        f"NumPy {meta['numpy']}, Python {meta['python']}, {meta['cpus']} CPUs.",
        "",
        f"Test accuracy after {meta['epochs']} epochs (mean ± std over {meta['seeds']} seeds) "
        f"and seconds per epoch at {t1} thread(s) (median over all "
        f"{meta['epochs'] * meta['seeds']} epochs per side; shuffling + training steps):",
        "",
        "| activation | fastact test acc | PyTorch test acc | Δ (pp) | fastact s/epoch | "
        "PyTorch s/epoch | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for act, a in acc.items():
        fm, fs = _ms(a["fastact"])
        tm, ts = _ms(a["torch"])
        t = times[(t1, act)]
        fsec, tsec = statistics.median(t["fastact"]), statistics.median(t["torch"])
        lines.append(f"| {act} | {100 * fm:.2f} ± {100 * fs:.2f} % | {100 * tm:.2f} ± "
                     f"{100 * ts:.2f} % | {100 * (fm - tm):+.2f} | {fsec:.3f} | {tsec:.3f} | "
                     f"{fsec / tsec:.2f} |")
    for n in meta["threads"][1:]:
        lines += ["", f"Seconds per epoch at {n} threads (median of {meta['timing_epochs']} "
                  "epochs per side, seed 0; each framework timed alone in its own process):", "",
                  "| activation | fastact s/epoch | PyTorch s/epoch | ratio |", "|---|---|---|---|"]
        for act in acc:
            if (n, act) not in times or not times[(n, act)]["torch"]:
                lines.append(f"| {act} | (not run) | (not run) | – |")
                continue
            t = times[(n, act)]
            fsec, tsec = statistics.median(t["fastact"]), statistics.median(t["torch"])
            lines.append(f"| {act} | {fsec:.3f} | {tsec:.3f} | {fsec / tsec:.2f} |")
    if baseline:
        lines += ["", f"PyTorch with its default (non-fused) Adam, {t1} thread(s), "
                  f"{next(iter(acc))}: {statistics.median(baseline):.3f} s/epoch (median of "
                  f"{len(baseline)})."]
    busy = max(meta["load_before"], meta["load_after"]) > meta["max_load"]
    lines += ["", f"Load average (1 min) before/after: {meta['load_before']:.2f} / "
              f"{meta['load_after']:.2f}" + (" -- the machine was NOT idle; the timings are "
                                             "noisy (at the first thread count both sides "
                                             "alternate epochs, so the ratios are fairer "
                                             "than the absolute times)."
                                             if busy else " (idle).")]
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is needed: pip install torch==2.13.0", file=sys.stderr)
        return 1

    def emit(meta, acc, times, baseline):
        """Write the report so far (a later phase may be interrupted)."""
        if not args.out:
            return
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(report(meta, acc, times, baseline))
        with open(os.path.splitext(args.out)[0] + ".json", "w", encoding="utf-8") as handle:
            json.dump({"meta": meta, "accuracy": acc, "baseline_default_adam": baseline,
                       "times": {f"{k[0]}:{k[1]}": v for k, v in times.items()}},
                      handle, indent=1)

    meta, acc, times, baseline = run(args, emit)
    emit(meta, acc, times, baseline)
    print()
    print(report(meta, acc, times, baseline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
