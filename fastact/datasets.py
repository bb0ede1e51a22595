"""MNIST-format (IDX) data loading for the fastact example trainer.

The IDX reader is NumPy only; the per-user cache folder comes from
`platformdirs <https://platformdirs.readthedocs.io>`_, and downloads are
done by `pooch <https://www.fatiando.org/pooch>`_ (the ``train`` extra),
imported only when a download is needed.  ``import fastact`` imports
neither: it does not import this module.

Main entry points
-----------------
``load(name)``
    Find (or download) a registered data set and return a :class:`Dataset`
    with ``x_train, y_train, x_test, y_test``.
``read_idx(path)`` / ``write_idx(path, array)``
    Read / write a single IDX file, raw or gzip-compressed.
``to_float(images)``
    Flatten ``uint8`` images to ``(N, rows * cols)`` floats in ``[0, 1]``.

Registered data sets
--------------------
``"mnist"`` and ``"fashion-mnist"`` (``"fashion_mnist"`` is accepted too).
Each consists of four files::

    train-images-idx3-ubyte.gz   train-labels-idx1-ubyte.gz
    t10k-images-idx3-ubyte.gz    t10k-labels-idx1-ubyte.gz

Every file may also be stored uncompressed (the same name without ``.gz``,
or with ``.idx`` instead of ``-idx``, e.g. ``train-images.idx3-ubyte``).
Compression is detected from the gzip magic bytes, not from the name.

Search order
------------
``load(name, path=...)`` looks for the four files in these directories, in
order, and uses the first directory that holds all four:

1. ``path`` -- the explicit argument: the files directly in ``path``, or
   in ``path/<name>/``.
2. ``$FASTACT_DATA/<name>/`` -- ``FASTACT_DATA`` names a data *root*; each
   data set lives in its own sub-directory named after it (for example
   ``$FASTACT_DATA/fashion-mnist/train-images-idx3-ubyte.gz``).  Files
   placed directly in ``$FASTACT_DATA`` are *not* used, because MNIST and
   Fashion-MNIST use identical file names and could be confused.
3. The user cache folder, :func:`cache_dir` ``(name)``, as platformdirs
   places it: ``$XDG_CACHE_HOME/fastact/<name>`` if ``XDG_CACHE_HOME`` is
   set to an absolute path, otherwise ``~/.cache/fastact/<name>`` on Linux
   and other POSIX systems, ``~/Library/Caches/fastact/<name>`` on macOS
   and ``%LOCALAPPDATA%\\fastact\\<name>`` on Windows.  Earlier fastact
   releases honoured an absolute ``XDG_CACHE_HOME`` on every platform; where
   that folder differs from platformdirs' answer (Windows, or macOS with a
   platformdirs that ignores ``XDG_CACHE_HOME`` there),
   ``$XDG_CACHE_HOME/fastact/<name>`` is searched right after it, so files
   downloaded before are still found.
4. ``/usr/share/datasets/<name>/`` (the directories listed in the module
   attribute :data:`SYSTEM_DATA_DIRS`).  Debian's ``dataset-fashion-mnist``
   package installs the four gzipped Fashion-MNIST files in
   ``/usr/share/datasets/fashion-mnist/``.

If none holds the files and ``download=True``, the missing files are
downloaded with pooch from the data set's mirrors into the cache folder
(step 3).  Pooch streams each file into a temporary file in that folder,
checks it against its published checksum and only then renames it into
place, retrying :data:`DOWNLOAD_RETRIES` more times after a failed or
corrupt transfer; a download that fails, is cut off, is interrupted with
Ctrl-C or has the wrong checksum leaves nothing under the file's name, so
the next run simply downloads it again.  (A process killed outright, e.g.
with SIGKILL, can leave pooch's temporary ``tmp*`` file behind, never a
file under a data file's name; a later download into the cache folder
deletes such files once nothing has written to them for an hour.)  When
every mirror fails (for example when offline) a
:class:`DatasetNotFoundError` lists every place searched and says where to
put the files.

Checksums are verified only for files this module downloads.  Files found
locally are trusted but still validated structurally (IDX headers, sizes,
image/label counts, label range): Debian's ``dataset-fashion-mnist``, for
instance, re-compressed the upstream files, so their ``.gz`` checksums
differ from the published ones although the decompressed data is intact.
"""

from __future__ import annotations

import dataclasses
import gzip
import operator
import os
import re
import time
import urllib.parse
import zlib
from functools import reduce
from pathlib import Path
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import platformdirs

__all__ = [
    "IDXError",
    "DatasetError",
    "DatasetNotFoundError",
    "Dataset",
    "DatasetSpec",
    "DATASETS",
    "SYSTEM_DATA_DIRS",
    "DOWNLOAD_RETRIES",
    "FILE_ROLES",
    "read_idx",
    "write_idx",
    "register",
    "get_spec",
    "cache_dir",
    "search_dirs",
    "find",
    "download",
    "load",
    "to_float",
]

PathLike = Union[str, "os.PathLike[str]"]


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


class IDXError(ValueError):
    """An IDX file is malformed (bad header, wrong size, corrupt gzip...).

    The message always starts with the offending file's path.
    """


class DatasetError(ValueError):
    """IDX files were read but do not form a valid data set.

    Raised for wrong dimensionality, image/label count mismatches, labels
    out of range and similar content problems.
    """


class DatasetNotFoundError(FileNotFoundError):
    """A data set was found nowhere and could not be downloaded.

    The message lists every location searched, every download attempt and
    where the user can put the files.
    """


# --------------------------------------------------------------------------
# IDX format
# --------------------------------------------------------------------------

# IDX type code -> element dtype (big-endian in the file).
_IDX_TYPES: Dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# Reverse mapping: (kind, itemsize) -> type code.
_IDX_CODES: Dict[Tuple[str, int], int] = {
    (dt.kind, dt.itemsize): code for code, dt in _IDX_TYPES.items()
}

#: Largest number of dimensions accepted in an IDX header.  The format
#: allows up to 255; anything above NumPy's own limit is certainly corrupt.
MAX_NDIM = 32

_GZIP_MAGIC = b"\x1f\x8b"
# Deflate cannot compress better than about 1032:1, so a gzip file of
# ``n`` bytes cannot decompress to more than about ``1032 * n`` bytes.  A
# header claiming more is rejected before allocating anything.
_MAX_GZIP_RATIO = 1100
_CHUNK = 1 << 20


def _fmt_type_codes() -> str:
    return ", ".join(f"0x{c:02X} ({_IDX_TYPES[c].str[1:]})" for c in sorted(_IDX_TYPES))


def _read_exactly(stream, n: int) -> bytes:
    """Read up to ``n`` bytes, looping over short reads; fewer only at EOF."""
    parts = []
    remaining = n
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def _readinto_full(stream, buf: memoryview) -> int:
    """Fill ``buf`` from ``stream`` in chunks; return the number of bytes read."""
    total = 0
    size = len(buf)
    while total < size:
        n = stream.readinto(buf[total : min(size, total + _CHUNK)])
        if not n:
            break
        total += n
    return total


def _parse_idx(stream, name: str, stored_size: int, compressed: bool) -> np.ndarray:
    """Parse an IDX stream; raise IDXError (message prefixed by ``name``)."""

    def fail(problem: str) -> IDXError:
        return IDXError(f"{name}: {problem}")

    magic = _read_exactly(stream, 4)
    if len(magic) == 0:
        raise fail("file is empty" + (" (after gzip decompression)" if compressed else ""))
    if len(magic) < 4:
        raise fail(f"file too short: {len(magic)} byte(s), an IDX header needs at least 4")
    if magic[0] != 0 or magic[1] != 0:
        raise fail(
            f"bad magic number 0x{magic.hex().upper()}: an IDX file starts with two "
            "zero bytes, a type code and the number of dimensions (not an IDX file?)"
        )
    code, ndim = magic[2], magic[3]
    if code not in _IDX_TYPES:
        raise fail(f"unknown IDX type code 0x{code:02X}; known codes: {_fmt_type_codes()}")
    if ndim == 0 or ndim > MAX_NDIM:
        raise fail(f"invalid number of dimensions {ndim} in header (expected 1..{MAX_NDIM})")

    dims_raw = _read_exactly(stream, 4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise fail(
            f"header truncated: {ndim} dimension(s) need {4 * ndim} bytes of sizes "
            f"after the magic number, only {len(dims_raw)} present"
        )
    shape = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4"))
    dtype = _IDX_TYPES[code]
    count = reduce(operator.mul, shape, 1)
    nbytes = count * dtype.itemsize
    header = 4 + 4 * ndim

    # Reject impossible sizes before allocating memory for them.
    if not compressed and header + nbytes != stored_size:
        have = stored_size - header
        what = "truncated" if have < nbytes else "trailing bytes"
        raise fail(
            f"{what}: header says shape {shape} of {dtype.str[1:]} "
            f"= {nbytes} data bytes, but the file holds {have} data bytes"
        )
    if compressed and nbytes > _MAX_GZIP_RATIO * stored_size + _CHUNK:
        raise fail(
            f"truncated: header says shape {shape} of {dtype.str[1:]} = {nbytes} "
            f"data bytes, more than a {stored_size}-byte gzip file can hold"
        )

    try:
        arr = np.empty(count, dtype=dtype)
    except (MemoryError, ValueError) as exc:  # pragma: no cover - absurd sizes
        raise fail(f"cannot allocate array of shape {shape}: {exc}") from None
    got = _readinto_full(stream, memoryview(arr).cast("B")) if nbytes else 0
    if got < nbytes:
        raise fail(
            f"truncated: header says shape {shape} of {dtype.str[1:]} = {nbytes} "
            f"data bytes, only {got} present"
        )
    extra = 0
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        extra += len(chunk)
    if extra:
        raise fail(
            f"trailing bytes: {extra} byte(s) after the {nbytes} data bytes "
            f"announced by the header (shape {shape} of {dtype.str[1:]})"
        )

    if not dtype.isnative:
        arr.byteswap(inplace=True)
        arr = arr.view(dtype.newbyteorder("="))
    return arr.reshape(shape)


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST file format), raw or gzip-compressed.

    Parameters
    ----------
    path : str or os.PathLike
        File to read.  Gzip compression is detected from the file's first
        two bytes (``1f 8b``), whatever the file is called.

    Returns
    -------
    numpy.ndarray
        Writable, C-contiguous, native-endian array with the shape given in
        the header.  The dtype follows the IDX type code: ``0x08`` uint8,
        ``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32,
        ``0x0E`` float64.

    Raises
    ------
    IDXError
        If the file is not a valid IDX file: empty, bad magic number,
        unknown type code, zero or absurd number of dimensions, header
        shorter than the number of dimensions requires, data shorter or
        longer than the header announces, or corrupt/truncated gzip data.
        The message starts with the file's path.
    OSError
        If the file cannot be opened at all (missing, permission denied).

    Examples
    --------
    >>> images = read_idx("train-images-idx3-ubyte.gz")  # doctest: +SKIP
    >>> images.shape, images.dtype                       # doctest: +SKIP
    ((60000, 28, 28), dtype('uint8'))
    """
    name = os.fspath(path)
    with open(name, "rb") as raw:
        stored_size = os.fstat(raw.fileno()).st_size
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        if not compressed:
            return _parse_idx(raw, name, stored_size, compressed=False)
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                return _parse_idx(gz, name, stored_size, compressed=True)
        except (OSError, EOFError, zlib.error) as exc:
            # gzip.BadGzipFile is an OSError; a cut-off stream gives EOFError.
            raise IDXError(f"{name}: corrupt or truncated gzip data ({exc})") from None


def write_idx(path: PathLike, array, compress: Optional[bool] = None) -> Path:
    """Write an array as an IDX file.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file (overwritten).
    array : array_like
        Data with 1 to :data:`MAX_NDIM` dimensions and dtype uint8, int8,
        int16, int32, float32 or float64 (any byte order).
    compress : bool, optional
        Gzip the file.  Default: compress if ``path`` ends with ``.gz``.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ValueError
        If the dtype has no IDX type code or the number of dimensions is
        not in ``1..MAX_NDIM``.
    """
    arr = np.asarray(array)
    key = (arr.dtype.kind, arr.dtype.itemsize)
    if key not in _IDX_CODES:
        raise ValueError(f"dtype {arr.dtype} has no IDX type code; use one of {_fmt_type_codes()}")
    if not 1 <= arr.ndim <= MAX_NDIM:
        raise ValueError(f"IDX needs 1..{MAX_NDIM} dimensions, got {arr.ndim}")
    if any(d >= 2**32 for d in arr.shape):
        raise ValueError(f"dimension too large for IDX: {arr.shape}")
    code = _IDX_CODES[key]
    path = Path(path)
    if compress is None:
        compress = path.suffix == ".gz"
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    data = np.ascontiguousarray(arr, dtype=_IDX_TYPES[code]).tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(header)
        f.write(data)
    return path


# --------------------------------------------------------------------------
# Data set registry
# --------------------------------------------------------------------------

#: The four files of an MNIST-style data set, in a fixed order.
FILE_ROLES = ("train_images", "train_labels", "test_images", "test_labels")


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Description of an MNIST-style data set.

    Parameters
    ----------
    name : str
        Registry key and sub-directory name (e.g. ``"fashion-mnist"``).
    files : Mapping[str, str]
        File name (as downloaded, normally ``*.gz``) for each role in
        :data:`FILE_ROLES`.
    checksums : Mapping[str, str]
        Checksum of each downloaded file, keyed by file name, as hex digest:
        32 hex digits are MD5, 64 are SHA-256 (or prefix ``"md5:"`` /
        ``"sha256:"``).  A file without entry is not verified.
    mirrors : Sequence[str]
        Base URLs tried in order; the file name is appended.
    num_classes : int
        Labels must lie in ``0 .. num_classes - 1``.
    hint : str
        Extra advice appended to :class:`DatasetNotFoundError` messages.
    """

    name: str
    files: Mapping[str, str]
    checksums: Mapping[str, str]
    mirrors: Sequence[str]
    num_classes: int = 10
    hint: str = ""


_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

#: Registered data sets, keyed by name.  Use :func:`register` to add one.
DATASETS: Dict[str, DatasetSpec] = {}

# MNIST: MD5 checksums of the .gz files and the mirror list as used by
# torchvision (pytorch/vision, torchvision/datasets/mnist.py, class MNIST,
# ``mirrors`` / ``resources``).  The S3 mirror is tried first because
# yann.lecun.com has often refused or throttled downloads.
DATASETS["mnist"] = DatasetSpec(
    name="mnist",
    files=dict(_MNIST_FILES),
    checksums={
        "train-images-idx3-ubyte.gz": "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "md5:d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "md5:9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "md5:ec29112dd5afa0611ce80d1b7f02629c",
    },
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
)

# Fashion-MNIST: MD5 checksums from the "Get the Data" table of the
# project's README (github.com/zalandoresearch/fashion-mnist, README.md),
# identical to torchvision's FashionMNIST ``resources``.  The S3 URL is the
# README's download link; the GitHub copy (``data/fashion`` in the repo,
# which the README offers as the alternative) is a second mirror, guarded
# by the same checksums.
DATASETS["fashion-mnist"] = DatasetSpec(
    name="fashion-mnist",
    files=dict(_MNIST_FILES),
    checksums={
        "train-images-idx3-ubyte.gz": "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "md5:25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "md5:bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "md5:bb300cfdad3c16e7a12a480ee83cd310",
    },
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    hint=(
        "On Debian/Ubuntu the files are packaged: "
        "'sudo apt-get install dataset-fashion-mnist' installs them in "
        "/usr/share/datasets/fashion-mnist/."
    ),
)


def _normalize_name(name: str) -> str:
    return str(name).strip().lower().replace("_", "-")


def register(spec: DatasetSpec, overwrite: bool = False) -> DatasetSpec:
    """Add a data set description to the registry.

    Parameters
    ----------
    spec : DatasetSpec
        The description; ``spec.files`` must name a file for every role in
        :data:`FILE_ROLES`.
    overwrite : bool
        Replace an existing entry of the same name instead of raising.

    Returns
    -------
    DatasetSpec
        ``spec``, for chaining.

    Raises
    ------
    ValueError
        If the name is taken (and ``overwrite`` is false) or a role is
        missing from ``spec.files``.
    """
    key = _normalize_name(spec.name)
    missing = [r for r in FILE_ROLES if r not in spec.files]
    if missing:
        raise ValueError(f"data set spec {spec.name!r} lacks files for {missing}")
    if key in DATASETS and not overwrite:
        raise ValueError(f"data set {key!r} is already registered")
    DATASETS[key] = spec
    return spec


def get_spec(name: str) -> DatasetSpec:
    """Return the registered :class:`DatasetSpec` for ``name``.

    Parameters
    ----------
    name : str
        Data set name; case-insensitive, ``_`` is read as ``-``.

    Returns
    -------
    DatasetSpec

    Raises
    ------
    ValueError
        If no data set of that name is registered.
    """
    key = _normalize_name(name)
    try:
        return DATASETS[key]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise ValueError(f"unknown data set {name!r}; known: {known}") from None


# --------------------------------------------------------------------------
# Locating files
# --------------------------------------------------------------------------

#: System-wide data roots searched last (``<root>/<name>/``).  A module
#: attribute so that tests and unusual installations can change it.
SYSTEM_DATA_DIRS: List[str] = ["/usr/share/datasets"]

#: Environment variable naming a data root (``$FASTACT_DATA/<name>/``).
ENV_VAR = "FASTACT_DATA"


def cache_dir(name: Optional[str] = None) -> Path:
    """Return the per-user cache folder for fastact data.

    Parameters
    ----------
    name : str, optional
        Data set name; if given, its sub-folder is returned.

    Returns
    -------
    pathlib.Path
        platformdirs' user cache folder for ``fastact``:
        ``$XDG_CACHE_HOME/fastact`` when ``XDG_CACHE_HOME`` is an absolute
        path (Linux, macOS), otherwise ``~/.cache/fastact`` on Linux,
        ``~/Library/Caches/fastact`` on macOS and
        ``%LOCALAPPDATA%\\fastact`` on Windows.  The folder is not created.
    """
    # appauthor=False and opinion=False keep the Windows folder what fastact
    # always used (%LOCALAPPDATA%\fastact, not ...\fastact\fastact\Cache).
    root = platformdirs.user_cache_path("fastact", appauthor=False, opinion=False)
    return root / _normalize_name(name) if name is not None else root


def _legacy_cache_dir(name: str) -> Optional[Path]:
    """The cache folder of earlier fastact releases, if it differs from :func:`cache_dir`.

    Those honoured an absolute ``XDG_CACHE_HOME`` on every platform, which
    platformdirs does not on Windows (nor on macOS before it learnt to).
    """
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(xdg):
        return None
    legacy = Path(xdg) / "fastact" / _normalize_name(name)
    return legacy if legacy != cache_dir(name) else None


def search_dirs(name: str, path: Optional[PathLike] = None) -> List[Tuple[str, Path]]:
    """List the directories searched for a data set, in search order.

    Parameters
    ----------
    name : str
        Registered data set name.
    path : str or os.PathLike, optional
        Explicit directory (searched first, then ``path/<name>``).

    Returns
    -------
    list of (str, pathlib.Path)
        ``(origin, directory)`` pairs; origin is one of ``"path"``,
        ``"FASTACT_DATA"``, ``"cache"``, ``"system"``.  Directories need not
        exist.  Where earlier releases' cache folder differs from
        :func:`cache_dir` (see the module docstring), it follows it, also
        as ``"cache"``.
    """
    key = get_spec(name).name
    dirs: List[Tuple[str, Path]] = []
    if path is not None:
        p = Path(path).expanduser()
        dirs += [("path", p), ("path", p / key)]
    env = os.environ.get(ENV_VAR)
    if env:
        dirs.append((ENV_VAR, Path(env).expanduser() / key))
    dirs.append(("cache", cache_dir(key)))
    legacy = _legacy_cache_dir(key)
    if legacy is not None:
        dirs.append(("cache", legacy))
    for root in SYSTEM_DATA_DIRS:
        dirs.append(("system", Path(root) / key))
    return dirs


def _name_variants(filename: str) -> List[str]:
    """Accepted on-disk names for a file: gzipped or not, ``-idx`` or ``.idx``."""
    base = filename[:-3] if filename.endswith(".gz") else filename
    names = [base + ".gz", base]
    dotted = base.replace("-idx", ".idx")
    if dotted != base:
        names += [dotted + ".gz", dotted]
    return names


def _files_in(spec: DatasetSpec, directory: Path) -> Tuple[Dict[str, Path], List[str]]:
    """Map roles to existing files in ``directory``; also return missing names."""
    found: Dict[str, Path] = {}
    missing: List[str] = []
    for role in FILE_ROLES:
        for candidate in _name_variants(spec.files[role]):
            p = directory / candidate
            if p.is_file():
                found[role] = p
                break
        else:
            missing.append(spec.files[role])
    return found, missing


def find(name: str, path: Optional[PathLike] = None) -> Optional[Dict[str, Path]]:
    """Locate a data set's four files without downloading anything.

    Parameters
    ----------
    name : str
        Registered data set name.
    path : str or os.PathLike, optional
        Explicit directory searched first.

    Returns
    -------
    dict or None
        ``{role: file}`` for the roles in :data:`FILE_ROLES`, all from the
        first directory (in the order of :func:`search_dirs`) that holds
        all four; ``None`` if there is none.
    """
    spec = get_spec(name)
    for _origin, directory in search_dirs(name, path):
        found, missing = _files_in(spec, directory)
        if not missing:
            return found
    return None


# --------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------


#: How many more times pooch tries a file from one mirror after a failed
#: transfer (cut connection, timeout, HTTP error, wrong checksum), waiting
#: 1 s, 2 s, ... in between, before fastact moves on to the next mirror.
DOWNLOAD_RETRIES = 1

# Bytes per read and write while downloading (pooch's default is 1 KiB, and
# it flushes after every chunk).
_DOWNLOAD_CHUNK = 1 << 16


def _pooch_hash(checksum: Optional[str]) -> Optional[str]:
    """Turn a :class:`DatasetSpec` checksum into pooch's ``algorithm:digest`` form.

    Pooch reads a bare digest as SHA-256; fastact's specs also allow a bare
    32-digit MD5 (or 40-digit SHA-1), told apart by their length.
    """
    if not checksum or ":" in checksum:
        return checksum
    algo = {32: "md5", 40: "sha1", 64: "sha256"}.get(len(checksum))
    if algo is None:
        raise ValueError(f"cannot tell the hash algorithm of checksum {checksum!r}")
    return f"{algo}:{checksum}"


# Pooch's temporary files carry tempfile's default names.  One that nothing
# has written to for an hour belongs to no live download (those give up
# after ``timeout`` seconds without data): a killed process left it.
_POOCH_TEMP_NAME = re.compile(r"tmp[a-z0-9_]{8}")
_STALE_SECONDS = 3600


def _remove_stale_temp_files(directory: Path) -> None:
    """Delete temporary files that killed downloads left in the cache folder."""
    now = time.time()
    for p in directory.glob("tmp*"):
        try:
            if (_POOCH_TEMP_NAME.fullmatch(p.name) and p.is_file()
                    and now - p.stat().st_mtime > _STALE_SECONDS):
                p.unlink()
        except OSError:  # gone already, or not ours to delete
            pass


def _durable_downloader(timeout: float):
    """Pooch's HTTP downloader, with the file fsync'ed before pooch renames it.

    Pooch's rename already keeps a partial file from ever appearing under
    the final name; the fsync keeps a power cut right after the rename from
    leaving a named but empty file.
    """
    import pooch

    http = pooch.HTTPDownloader(progressbar=False, chunk_size=_DOWNLOAD_CHUNK, timeout=timeout)

    def fetch(url, output_file, pooch_obj):
        http(url, output_file, pooch_obj)
        with open(output_file, "r+b") as f:
            os.fsync(f.fileno())

    return fetch


def download(
    name: str,
    dest: Optional[PathLike] = None,
    mirrors: Optional[Sequence[str]] = None,
    timeout: float = 60.0,
    force: bool = False,
) -> Path:
    """Download a data set's files from its mirrors with pooch.

    Each file is fetched from the first mirror that serves it with the
    right checksum: pooch streams it into a temporary file in ``dest``,
    checks it and renames it into place, so an interrupted or rejected
    download never leaves a partial file under the final name.  A failed
    transfer is retried :data:`DOWNLOAD_RETRIES` times per mirror.

    Parameters
    ----------
    name : str
        Registered data set name.
    dest : str or os.PathLike, optional
        Target directory; default ``cache_dir(name)``.  Created if needed.
    mirrors : sequence of str, optional
        Base URLs (``http://`` or ``https://``) to use instead of the
        registered ones; the file name is appended to each.
    timeout : float
        Socket timeout in seconds for each connection and read.
    force : bool
        Re-download files that already exist in ``dest``.  Such a file is
        removed first, so if every mirror then fails it is missing (never
        partial).  Without ``force`` existing files are kept as they are.

    Returns
    -------
    pathlib.Path
        The directory holding the four files.

    Raises
    ------
    DatasetNotFoundError
        If some file could not be fetched from any mirror (the message
        lists each URL tried and why it failed), or pooch is not installed.
    ValueError
        If a mirror URL is not http(s).
    """
    spec = get_spec(name)
    target_dir = Path(dest) if dest is not None else cache_dir(spec.name)
    bases = list(spec.mirrors if mirrors is None else mirrors)
    for base in bases:
        if urllib.parse.urlsplit(base).scheme not in ("http", "https"):
            raise ValueError(f"mirror {base!r} is not an http(s) URL")
    try:
        import pooch
    except ImportError:
        raise DatasetNotFoundError(
            f"cannot download data set {spec.name!r}: downloading needs the 'pooch' "
            "package (pip install 'fastact[train]')"
        ) from None
    created = not target_dir.exists()
    if not created and target_dir == cache_dir(spec.name):
        _remove_stale_temp_files(target_dir)
    fetch = _durable_downloader(timeout)
    failures: List[str] = []
    for role in FILE_ROLES:
        filename = spec.files[role]
        target = target_dir / filename
        if target.is_file():
            if not force:
                continue
            # Pooch keeps a file whose checksum matches: remove it to refetch.
            target.unlink()
        registry = {filename: _pooch_hash(spec.checksums.get(filename))}
        errors = []
        for base in bases:
            fetcher = pooch.create(path=target_dir, base_url=base, registry=registry,
                                   retry_if_failed=DOWNLOAD_RETRIES)
            try:
                fetcher.fetch(filename, downloader=fetch)
                break
            except (OSError, ValueError) as exc:  # requests' errors are OSErrors; checksum
                errors.append(f"{fetcher.get_url(filename)}: {exc}")
        else:
            if not bases:
                errors.append("no mirrors configured")
            failures.append(f"{filename}:\n" + "\n".join("      " + e for e in errors))
            # Don't bother with the remaining files if a file failed everywhere
            # because every mirror was unreachable (typical when offline).
            break
    if failures:
        if created:  # leave no empty folder behind after a failed first download
            try:
                target_dir.rmdir()
            except OSError:
                pass
        raise DatasetNotFoundError(
            f"could not download data set {spec.name!r} into {target_dir}:\n  "
            + "\n  ".join(failures)
        )
    return target_dir


# ``load`` has a ``download`` flag that shadows the function inside it.
_download = download


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


class Dataset(NamedTuple):
    """A loaded MNIST-style data set.

    Attributes
    ----------
    x_train : numpy.ndarray
        Training images, uint8, shape ``(N, rows, cols)``.
    y_train : numpy.ndarray
        Training labels, uint8, shape ``(N,)``.
    x_test : numpy.ndarray
        Test images, uint8, shape ``(M, rows, cols)``.
    y_test : numpy.ndarray
        Test labels, uint8, shape ``(M,)``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _not_found_message(spec: DatasetSpec, path, download_error: Optional[str]) -> str:
    lines = [f"data set {spec.name!r} not found.", "Searched, in order:"]
    for origin, directory in search_dirs(spec.name, path):
        _found, missing = _files_in(spec, directory)
        if not directory.is_dir():
            state = "does not exist"
        elif len(missing) == len(FILE_ROLES):
            state = "no data files"
        else:
            state = "incomplete, missing " + ", ".join(missing)
        lines.append(f"  - {directory}  ({origin}: {state})")
    if ENV_VAR not in os.environ:
        lines.append(f"  ({ENV_VAR} is not set)")
    if download_error is not None:
        lines.append("Download failed:")
        lines += ["  " + ln for ln in download_error.splitlines()]
    else:
        lines.append("Download was not attempted (download=False).")
    names = ", ".join(spec.files[r] for r in FILE_ROLES)
    lines.append(
        f"To fix this, put the four files ({names}; gzipped or not) into "
        f"{cache_dir(spec.name)}, or into <DIR>/{spec.name}/ and set "
        f"{ENV_VAR}=<DIR>, or pass path=<directory holding them>."
    )
    if spec.hint:
        lines.append(spec.hint)
    return "\n".join(lines)


def _read_found(spec: DatasetSpec, file: Path) -> np.ndarray:
    """:func:`read_idx`, saying how to recover when a bad file sits in the cache."""
    try:
        return read_idx(file)
    except IDXError as exc:
        if file.parent not in (cache_dir(spec.name), _legacy_cache_dir(spec.name)):
            raise
        raise IDXError(
            f"{exc}.  The file is in fastact's download cache: delete it and the "
            "next run downloads it again."
        ) from None


def _check_pair(spec: DatasetSpec, images: np.ndarray, labels: np.ndarray, fimg: Path, flab: Path):
    if images.ndim != 3:
        raise DatasetError(
            f"{fimg}: expected a 3-D image array (N, rows, cols), got shape {images.shape}"
        )
    if images.dtype != np.uint8:
        raise DatasetError(f"{fimg}: expected uint8 pixels, got {images.dtype}")
    if labels.ndim != 1:
        raise DatasetError(f"{flab}: expected a 1-D label array (N,), got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise DatasetError(f"{flab}: expected integer labels, got {labels.dtype}")
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(
            f"{fimg} holds {images.shape[0]} images but {flab} holds "
            f"{labels.shape[0]} labels"
        )
    if labels.size:
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= spec.num_classes:
            bad = int(np.count_nonzero((labels < 0) | (labels >= spec.num_classes)))
            raise DatasetError(
                f"{flab}: {bad} label(s) outside 0..{spec.num_classes - 1} "
                f"(min {lo}, max {hi})"
            )


def load(
    name: str,
    path: Optional[PathLike] = None,
    download: bool = True,
    mirrors: Optional[Sequence[str]] = None,
    timeout: float = 60.0,
) -> Dataset:
    """Load an MNIST-style data set, downloading it if necessary.

    Parameters
    ----------
    name : str
        ``"mnist"``, ``"fashion-mnist"`` or another registered name.
    path : str or os.PathLike, optional
        Directory searched first (the files directly in it, or in
        ``path/<name>/``).  See the module docstring for the full search
        order.
    download : bool
        If the files are found nowhere, download them into
        :func:`cache_dir` ``(name)``.  With ``False`` a missing data set
        raises immediately.
    mirrors : sequence of str, optional
        Base URLs to download from instead of the registered mirrors.
    timeout : float
        Socket timeout in seconds for downloads.

    Returns
    -------
    Dataset
        ``(x_train, y_train, x_test, y_test)``; images uint8 of shape
        ``(N, rows, cols)`` as stored in the files, labels of shape ``(N,)``.

    Raises
    ------
    DatasetNotFoundError
        If the files are not found and cannot be downloaded; the message
        lists every place searched and where to put the files.
    IDXError
        If a file is not a valid IDX file; for a file in the cache folder
        the message adds that deleting it makes the next run download it
        again.
    DatasetError
        If images are not 3-D uint8, labels not 1-D integers, image and
        label counts differ, or a label is out of range.
    ValueError
        If ``name`` is not registered.

    Examples
    --------
    >>> x_train, y_train, x_test, y_test = load("fashion-mnist")  # doctest: +SKIP
    >>> x_train.shape                                              # doctest: +SKIP
    (60000, 28, 28)
    """
    spec = get_spec(name)
    files = find(spec.name, path)
    if files is None:
        error: Optional[str] = None
        if download:
            try:
                _download(spec.name, mirrors=mirrors, timeout=timeout)
            except DatasetNotFoundError as exc:
                error = str(exc)
            else:
                files, _missing = _files_in(spec, cache_dir(spec.name))
                if _missing:  # pragma: no cover - removed concurrently
                    files = None
                    error = "downloaded files vanished: " + ", ".join(_missing)
        if files is None:
            raise DatasetNotFoundError(_not_found_message(spec, path, error))
    arrays = {role: _read_found(spec, files[role]) for role in FILE_ROLES}
    _check_pair(spec, arrays["train_images"], arrays["train_labels"],
                files["train_images"], files["train_labels"])
    _check_pair(spec, arrays["test_images"], arrays["test_labels"],
                files["test_images"], files["test_labels"])
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise DatasetError(
            f"image size differs: {files['train_images']} has "
            f"{arrays['train_images'].shape[1:]}, {files['test_images']} has "
            f"{arrays['test_images'].shape[1:]}"
        )
    return Dataset(arrays["train_images"], arrays["train_labels"],
                   arrays["test_images"], arrays["test_labels"])


def to_float(images, dtype=np.float32) -> np.ndarray:
    """Flatten uint8 images to rows of floats scaled to ``[0, 1]``.

    Parameters
    ----------
    images : array_like
        uint8 array of shape ``(N, rows, cols)`` (any shape ``(N, ...)`` is
        accepted; a 1-D input is treated as a single row).
    dtype : numpy dtype
        Floating-point output type, default ``float32``.

    Returns
    -------
    numpy.ndarray
        C-contiguous array of shape ``(N, rows * cols)`` with values
        ``pixel / 255``.

    Raises
    ------
    TypeError
        If ``images`` is not uint8 or ``dtype`` is not a floating type.
    """
    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        raise TypeError(f"to_float expects uint8 images, got {arr.dtype}")
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"to_float needs a floating dtype, got {dt}")
    flat = arr.reshape(arr.shape[0], -1) if arr.ndim >= 2 else arr.reshape(1, -1)
    out = flat.astype(dt)  # always a fresh C-contiguous copy
    # Divide rather than multiply by 1/255 so that 255 maps to exactly 1.0.
    np.divide(out, dt.type(255), out=out)
    return out
