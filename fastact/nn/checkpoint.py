"""Training checkpoints: the state a resumed ``MLP.fit`` needs, written atomically.

A checkpoint is an uncompressed ``.npz`` file (NumPy's zip of ``.npy``
arrays, each member guarded by a CRC-32) holding

* ``__header__``: JSON with the format name and version, the settings the
  resumed run must share (``run``: model configuration, batch size,
  validation split, shuffling, seed, optimiser hyperparameters and a digest
  of the training and validation data) and the loop's position and
  bookkeeping (``state``: completed epochs, steps done in the current epoch,
  the shuffle generator's ``bit_generator.state`` at the start of that
  epoch, the epoch's partial loss sum, correct count and time, and the
  history so far), and the optimiser's step count;
* ``param/<name>``: every parameter, named as in ``MLP.named_parameters()``;
* ``optim/<name>``: the optimiser's buffers (Adam's moments, SGD's momentum).

Restoring all of it makes the resumed run take exactly the same steps as
one that was never stopped, so its final weights are bit-identical.

:func:`atomic_write` writes to a temporary file in the target's folder,
flushes and fsyncs it, renames it over the target and fsyncs the folder: a
crash at any moment leaves either the previous file or the new one, never a
mixture.  It knows nothing of the model, so ``MLP.save`` uses it too.
"""

import contextlib
import glob
import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "TrainState",
    "Checkpoint",
    "atomic_write",
    "data_digest",
    "save_checkpoint",
    "load_checkpoint",
]

CHECKPOINT_FORMAT = "fastact.nn.checkpoint"
#: Version of the checkpoint layout; files with a larger number are refused.
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read, or that does not belong to this run.

    A :class:`ValueError`.  ``MLP.fit(resume=...)`` raises it for a damaged
    file, one of a newer format, or one written by a run with other
    settings (the message names the file and every setting that differs).
    """


@dataclass
class TrainState:
    """Where a training loop stands, and what it has accumulated so far.

    Attributes
    ----------
    epoch : int
        Epochs completed.
    step : int
        Training steps done in epoch ``epoch`` (0 up to the steps per epoch;
        equal to it when the epoch's steps are done but its validation and
        history entry are not).
    rng_state : dict or None
        The shuffle generator's ``bit_generator.state`` at the start of
        epoch ``epoch``, before its permutation is drawn.
    loss_sum, correct, epoch_time : float, int, float
        The current epoch's sum of batch loss times batch size, count of
        correct predictions and seconds of training so far.
    history : dict of lists
        One entry per completed epoch, as ``MLP.fit`` returns it.
    """

    epoch: int = 0
    step: int = 0
    rng_state: dict = None
    loss_sum: float = 0.0
    correct: int = 0
    epoch_time: float = 0.0
    history: dict = field(default_factory=dict)

    def next_epoch(self, rng_state):
        """Move to the start of the next epoch."""
        self.epoch += 1
        self.step = 0
        self.loss_sum, self.correct, self.epoch_time = 0.0, 0, 0.0
        self.rng_state = rng_state

    def to_json(self):
        return {"epoch": self.epoch, "step": self.step, "rng_state": self.rng_state,
                "loss_sum": self.loss_sum, "correct": self.correct,
                "epoch_time": self.epoch_time, "history": self.history}


@dataclass
class Checkpoint:
    """A checkpoint as read from disk (see :func:`load_checkpoint`)."""

    path: str
    version: int
    run: dict
    state: TrainState
    params: dict
    optimizer: dict


# ----------------------------------------------------------------------------
# Atomic writes
# ----------------------------------------------------------------------------


def atomic_write(path, write):
    """Write a file through ``write(handle)`` so that ``path`` is never half-written.

    The data go to a temporary file in ``path``'s folder (a rename is atomic
    only within one file system), which is flushed and fsynced, then renamed
    over ``path``; the folder is fsynced so the rename itself survives a
    power cut.  On any error the temporary file is removed and ``path`` is
    left as it was.  Temporary files of the same target left by processes
    that were killed are removed after a successful write.  Returns ``path``.
    """
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp",
                               prefix=f".{os.path.basename(target)}.{os.getpid()}.")
    try:
        if hasattr(os, "fchmod"):  # mkstemp's 0600 would hide the file from others
            umask = _umask()
            os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)
    _remove_stale_temporaries(target)
    return path


_UMASK = None


def _remove_stale_temporaries(target):
    # A process killed while writing leaves its temporary file behind; the
    # next successful write of the same file removes those of processes that
    # no longer exist (the name carries the writer's pid), so repeated kills
    # do not fill the folder and a concurrent writer's file is left alone.
    target = os.path.abspath(target)
    base = os.path.basename(target)
    pattern = os.path.join(os.path.dirname(target), f".{glob.escape(base)}.*.tmp")
    for leftover in glob.glob(pattern):
        pid = os.path.basename(leftover)[len(base) + 2:].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            os.unlink(leftover)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # another user's process, or no os.kill
        return True
    return True


def _umask():
    # os.umask can only be read by setting it, which races with threads that
    # create files at that instant; so read it once per process.
    global _UMASK
    if _UMASK is None:
        mask = os.umask(0o022)
        os.umask(mask)
        _UMASK = mask
    return _UMASK


def _fsync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse; the data are synced
        pass
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------
# What must match on resume
# ----------------------------------------------------------------------------


def data_digest(*arrays):
    """A BLAKE2b digest of arrays' shapes, dtypes and bytes (``None`` entries allowed).

    Resuming on other data would silently train a different model; comparing
    digests catches a different data set, subset or validation split.
    """
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        if a is None:
            h.update(b"none;")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(memoryview(a.reshape(-1)).cast("B"))
    return h.hexdigest()


def _flatten(d, prefix=""):
    out = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def check_run(path, stored, current):
    """Raise :class:`CheckpointError` listing every setting that differs."""
    old, new = _flatten(stored), _flatten(current)
    diffs = [f"{key} (checkpoint {old.get(key, '<absent>')!r}, now {new.get(key, '<absent>')!r})"
             for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
    if diffs:
        raise CheckpointError(
            f"{path}: cannot resume: this run differs from the checkpoint in "
            + "; ".join(diffs)
        )


# ----------------------------------------------------------------------------
# Writing and reading
# ----------------------------------------------------------------------------


def save_checkpoint(path, named_parameters, optimizer, state, run):
    """Write a checkpoint atomically.

    Parameters
    ----------
    path : str or path-like
    named_parameters : list of (name, array)
        ``MLP.named_parameters()``.
    optimizer : Optimizer
        Anything with ``state_dict()``.
    state : TrainState
    run : dict
        The JSON-friendly settings a resumed run must share.
    """
    opt_state = optimizer.state_dict()
    header = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "run": run,
              "state": state.to_json(), "optimizer": {"steps": opt_state["steps"]}}
    arrays = {f"param/{name}": value for name, value in named_parameters}
    arrays.update({f"optim/{name}": value for name, value in opt_state["arrays"].items()})
    text = json.dumps(header, allow_nan=False)

    def write(handle):
        np.savez(handle, __header__=np.array(text), **arrays)

    return atomic_write(path, write)


def load_checkpoint(path):
    """Read and check a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    CheckpointError
        The file is not a fastact checkpoint, is damaged (truncated, a bad
        CRC, garbage, missing entries) or comes from a newer format version.
        The message names the file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "__header__" not in data.files:
                raise CheckpointError(f"{path}: not a fastact checkpoint (no header)")
            header = json.loads(str(data["__header__"][()]))
            kind = header.get("format") if isinstance(header, dict) else None
            if kind != CHECKPOINT_FORMAT:
                raise CheckpointError(f"{path}: not a fastact checkpoint (format {kind!r})")
            version = header.get("version")
            if not _is_int(version) or version < 1:
                raise CheckpointError(f"{path}: damaged checkpoint: bad version {version!r}")
            if version > CHECKPOINT_VERSION:
                raise CheckpointError(
                    f"{path}: written by a newer fastact (checkpoint format {version}; this "
                    f"version reads formats up to {CHECKPOINT_VERSION}); upgrade fastact"
                )
            arrays = {name: data[name] for name in data.files if name != "__header__"}
    except CheckpointError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, OSError, EOFError, JSON errors...
        raise CheckpointError(
            f"{path}: damaged or not a checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    run, state, steps = _parse_header(path, header)
    params = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
    optim = {k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")}
    if not params:
        raise CheckpointError(f"{path}: damaged checkpoint: it holds no parameters")
    return Checkpoint(path=path, version=version, run=run, state=state, params=params,
                      optimizer={"steps": steps, "arrays": optim})


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _parse_header(path, header):
    def bad(what):
        return CheckpointError(f"{path}: damaged checkpoint: {what}")

    for key in ("run", "state", "optimizer"):
        if not isinstance(header.get(key), dict):
            raise bad(f"the header has no {key!r} section")
    run, raw = header["run"], header["state"]
    missing = [k for k in ("epoch", "step", "rng_state", "loss_sum", "correct", "epoch_time",
                           "history") if k not in raw]
    if missing:
        raise bad(f"the state lacks {', '.join(missing)}")
    for key in ("epoch", "step", "correct"):
        if not _is_int(raw[key]) or raw[key] < 0:
            raise bad(f"state {key} must be a non-negative integer, got {raw[key]!r}")
    for key in ("loss_sum", "epoch_time"):
        if not _is_number(raw[key]):
            raise bad(f"state {key} must be a finite number, got {raw[key]!r}")
    if raw["rng_state"] is not None and not (
            isinstance(raw["rng_state"], dict) and "bit_generator" in raw["rng_state"]):
        raise bad("the shuffle generator's state is malformed")
    history = raw["history"]
    if not isinstance(history, dict) or not all(
            isinstance(v, list) and all(_is_number(x) for x in v) for v in history.values()):
        raise bad("the history is malformed")
    lengths = {len(v) for v in history.values()}
    if len(lengths) > 1 or (lengths and lengths.pop() != raw["epoch"]):
        raise bad(f"the history does not hold one entry per completed epoch ({raw['epoch']})")
    steps = header["optimizer"].get("steps")
    if not _is_int(steps) or steps < 0:
        raise bad(f"optimizer steps must be a non-negative integer, got {steps!r}")
    state = TrainState(epoch=raw["epoch"], step=raw["step"], rng_state=raw["rng_state"],
                       loss_sum=float(raw["loss_sum"]), correct=raw["correct"],
                       epoch_time=float(raw["epoch_time"]),
                       history={k: list(v) for k, v in history.items()})
    return run, state, steps


def restore_parameters(checkpoint, named_parameters):
    """Copy the checkpoint's parameters into the model's arrays (all checked first)."""
    path = checkpoint.path
    expected = dict(named_parameters)
    missing = sorted(set(expected) - set(checkpoint.params))
    extra = sorted(set(checkpoint.params) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{path}: the parameters do not fit the model: missing "
                              f"{missing}, unexpected {extra}")
    for name, param in expected.items():
        stored = checkpoint.params[name]
        if stored.shape != param.shape or stored.dtype != param.dtype:
            raise CheckpointError(
                f"{path}: parameter {name} has shape {stored.shape} and dtype {stored.dtype}, "
                f"the model's has {param.shape} and {param.dtype}")
        if not np.isfinite(stored).all():
            raise CheckpointError(f"{path}: parameter {name} holds NaN or infinite values")
    for name, param in expected.items():
        param[...] = checkpoint.params[name]


def restore_optimizer(checkpoint, optimizer):
    """Load the checkpoint's optimiser state, naming the file on error."""
    try:
        optimizer.load_state_dict(checkpoint.optimizer)
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{checkpoint.path}: {exc}") from None


def restore_rng(checkpoint, rng):
    """Set the shuffle generator to the state saved at the start of the epoch."""
    state = checkpoint.state.rng_state
    if state is None:
        return
    try:
        rng.bit_generator.state = state
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(
            f"{checkpoint.path}: cannot restore the shuffle generator ({exc})") from None
