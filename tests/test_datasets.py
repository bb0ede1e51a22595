"""Tests for fastact.datasets (IDX reading, data set search, download).

Everything here is generated in tmp_path; downloads go only to an HTTP
server on 127.0.0.1 started by a fixture (it can also cut a transfer
halfway, serve wrong bytes, fail once and then succeed, or stall).  The
real mirrors are never contacted: an autouse fixture points the registered
data sets' mirrors at a closed local port.  Every wait is bounded: client
timeouts of a few seconds, and pooch's retries are switched off except in
the tests about them.
"""

import dataclasses
import functools
import gzip
import hashlib
import http.server
import importlib.util
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

try:
    import fastact.datasets as ds
except Exception:  # compiled package not built yet: load the module file alone
    _path = Path(__file__).resolve().parents[1] / "fastact" / "datasets.py"
    _spec = importlib.util.spec_from_file_location("fastact_datasets_standalone", _path)
    ds = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = ds
    _spec.loader.exec_module(ds)

# The registry and retry count as shipped, captured before any fixture
# patches them.
REAL_SPECS = dict(ds.DATASETS)
SHIPPED_RETRIES = ds.DOWNLOAD_RETRIES

# --------------------------------------------------------------------------
# Helpers: an IDX encoder written independently of the module under test
# --------------------------------------------------------------------------

TYPE_CODES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def idx_bytes(arr, code=None):
    """Encode ``arr`` as IDX bytes with struct (big-endian header and data)."""
    arr = np.asarray(arr)
    if code is None:
        by_kind = {(np.dtype(v).kind, np.dtype(v).itemsize): k for k, v in TYPE_CODES.items()}
        code = by_kind[(arr.dtype.kind, arr.dtype.itemsize)]
    header = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(TYPE_CODES[code]).tobytes()


def write_file(path, data, compress=False):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


def sample(code, shape, seed=0):
    rng = np.random.default_rng(seed)
    dt = np.dtype(TYPE_CODES[code]).newbyteorder("=")
    if dt.kind == "f":
        return (rng.standard_normal(shape) * 1e3).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt)


MNIST_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def make_set(directory, n_train=6, n_test=4, rows=5, cols=3, compress=True, seed=0,
             dotted=False, labels=None):
    """Write a small MNIST-style data set; return its arrays by role."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, rows, cols), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, rows, cols), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    if labels:
        arrays.update(labels)
    for role, arr in arrays.items():
        name = MNIST_NAMES[role]
        if dotted:
            name = name.replace("-idx", ".idx")
        write_file(Path(directory) / (name + (".gz" if compress else "")), idx_bytes(arr), compress)
    return arrays


def assert_loaded(d, arrays):
    assert isinstance(d, ds.Dataset)
    for got, role in zip(d, ds.FILE_ROLES):
        np.testing.assert_array_equal(got, arrays[role])
        assert got.dtype == np.uint8


def closed_port():
    """A port on 127.0.0.1 with nothing listening (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_real_network(monkeypatch):
    """Point the shipped data sets at a closed local port and drop proxies.

    Also switch pooch's retries off (each waits a second); the tests about
    retrying restore the shipped count.
    """
    monkeypatch.setattr(ds, "DOWNLOAD_RETRIES", 0)
    dead = f"http://127.0.0.1:{closed_port()}/"
    for key, spec in REAL_SPECS.items():
        monkeypatch.setitem(ds.DATASETS, key, dataclasses.replace(spec, mirrors=(dead,)))
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Isolate every search location inside tmp_path."""
    roots = {
        "data": tmp_path / "fastact_data",
        "cache": tmp_path / "xdg_cache",
        "system": tmp_path / "usr_share_datasets",
    }
    monkeypatch.delenv("FASTACT_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(roots["cache"]))
    monkeypatch.setattr(ds, "SYSTEM_DATA_DIRS", [str(roots["system"])])
    return roots


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves www/ normally; the first path component picks a misbehaviour.

    /slow/F   wait 1.5 s, then 503 (longer than the client timeout used)
    /cut/F    announce F's full length, send half of it, close the connection
    /wrong/F  send F with every byte changed (same length: checksum mismatch)
    /flaky/F  like /cut/ for the first request of a train-images file, then
              serve it normally (for retries)
    /flakywrong/F  the same with /wrong/
    /stall/F  send half of F, then wait (at most 20 s) for state["release"]
    /b/F, /a/F ...  plain files (www/a/ does not exist: 404)
    """

    state = None  # dict shared with the test, set per server

    def log_message(self, fmt, *args):  # keep test output clean
        pass

    def do_GET(self):
        self.state["requests"].append(self.path)
        mode, _, rest = self.path.lstrip("/").partition("/")
        if mode == "slow":
            time.sleep(1.5)
            try:
                self.send_error(503)
            except OSError:
                pass
            return
        if mode not in ("cut", "wrong", "flaky", "flakywrong", "stall"):
            return super().do_GET()
        data = (Path(self.directory) / "b" / rest).read_bytes()
        first = self.state["requests"].count(self.path) == 1
        if mode == "wrong" or (mode == "flakywrong" and first and "train-images" in rest):
            data = bytes(x ^ 0xFF for x in data)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if mode in ("cut", "stall") or (mode == "flaky" and first and "train-images" in rest):
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            if mode == "stall":
                self.state["stalled"].set()
                self.state["release"].wait(20)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:  # the client is gone already
                pass
            return
        self.wfile.write(data)


@pytest.fixture
def server(tmp_path):
    """HTTP server on 127.0.0.1 (ephemeral port) serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()
    state = {"requests": [], "stalled": threading.Event(), "release": threading.Event()}
    handler = type("Handler", (_Handler,), {"state": state})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
    )
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield {"root": root, "base": base, "requests": state["requests"], "state": state}
    finally:
        state["release"].set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def tiny_spec(www_dir, name="tiny", bad_checksum=False, with_checksums=True):
    """Generate a small data set under www_dir/b/ and a spec with its checksums.

    With ``with_checksums=False`` the spec has none (a user-registered data set).
    """
    arrays = make_set(www_dir / "b", compress=True, seed=3)
    files = {role: MNIST_NAMES[role] + ".gz" for role in ds.FILE_ROLES}
    checksums = {}
    for i, fname in enumerate(files.values()):
        data = (www_dir / "b" / fname).read_bytes()
        # Every checksum form a spec may use: bare SHA-256, "md5:", bare MD5
        # (pooch alone would read it as SHA-256), "sha256:".
        md5, sha = hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()
        checksums[fname] = [sha, "md5:" + md5, md5, "sha256:" + sha][i]
    if bad_checksum:
        first = files["train_images"]
        checksums[first] = "md5:" + "0" * 32
    if not with_checksums:
        checksums = {}
    spec = ds.DatasetSpec(name=name, files=files, checksums=checksums, mirrors=())
    return spec, arrays


# --------------------------------------------------------------------------
# read_idx: round trips
# --------------------------------------------------------------------------

SHAPES = {1: (7,), 2: (3, 4), 3: (2, 3, 5), 4: (2, 1, 3, 2)}


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("ndim", sorted(SHAPES))
@pytest.mark.parametrize("code", sorted(TYPE_CODES), ids=lambda c: f"0x{c:02X}")
def test_round_trip(tmp_path, code, ndim, compress):
    arr = sample(code, SHAPES[ndim], seed=code * 10 + ndim)
    p = write_file(tmp_path / ("f.idx.gz" if compress else "f.idx"), idx_bytes(arr, code), compress)
    out = ds.read_idx(p)
    assert out.shape == arr.shape
    assert out.dtype == arr.dtype and out.dtype.isnative
    assert out.flags.writeable and out.flags.c_contiguous
    np.testing.assert_array_equal(out, arr)


def test_known_bytes_big_endian(tmp_path):
    # int16, 1-D, 2 elements: 0x0102 = 258 and 0xFFFE = -2
    p = write_file(tmp_path / "x", bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE]))
    out = ds.read_idx(p)
    assert out.tolist() == [258, -2] and out.dtype == np.int16


def test_empty_dimension(tmp_path):
    p = write_file(tmp_path / "e", idx_bytes(np.zeros((0, 28, 28), np.uint8)))
    assert ds.read_idx(p).shape == (0, 28, 28)


def test_gzip_detected_by_magic_not_suffix(tmp_path):
    arr = sample(0x0C, (3, 2))
    gz_no_suffix = write_file(tmp_path / "data.bin", idx_bytes(arr), compress=True)
    raw_with_gz_suffix = write_file(tmp_path / "data.gz", idx_bytes(arr), compress=False)
    np.testing.assert_array_equal(ds.read_idx(gz_no_suffix), arr)
    np.testing.assert_array_equal(ds.read_idx(raw_with_gz_suffix), arr)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_write_idx_round_trip(tmp_path, suffix):
    for code, shape in [(0x08, (4, 3)), (0x0E, (2, 2, 2)), (0x0B, (5,))]:
        arr = sample(code, shape, seed=code)
        p = ds.write_idx(tmp_path / f"w{code}{suffix}", arr.astype(arr.dtype.newbyteorder(">")))
        assert (p.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
        np.testing.assert_array_equal(ds.read_idx(p), arr)
        # The independent encoder and write_idx agree byte for byte.
        raw = gzip.decompress(p.read_bytes()) if suffix else p.read_bytes()
        assert raw == idx_bytes(arr, code)


def test_write_idx_rejects_unsupported(tmp_path):
    with pytest.raises(ValueError, match="IDX type code"):
        ds.write_idx(tmp_path / "x", np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="dimensions"):
        ds.write_idx(tmp_path / "x", np.float32(1.0))


# --------------------------------------------------------------------------
# read_idx: corrupt files
# --------------------------------------------------------------------------

GOOD = idx_bytes(np.arange(24, dtype=np.int32).reshape(2, 3, 4))


def _flip_deflate(data):
    gz = bytearray(gzip.compress(data, mtime=0))
    for i in range(12, len(gz) - 8):  # damage the deflate stream, keep the header
        gz[i] ^= 0x55
    return bytes(gz)


CORRUPT = {
    # name: (file bytes, written raw, expected fragment of the message)
    "empty": (b"", "empty"),
    "too_short": (b"\x00\x00", "too short"),
    "bad_magic": (b"\x12\x34" + GOOD[2:], "bad magic"),
    "bad_type": (b"\x00\x00\x07\x03" + GOOD[4:], "unknown IDX type code 0x07"),
    "ndim_zero": (b"\x00\x00\x08\x00", "dimensions 0"),
    "ndim_absurd": (b"\x00\x00\x08\xc8" + b"\x00" * 800, "dimensions 200"),
    "header_short": (GOOD[:9], "header truncated"),
    "truncated": (GOOD[:-3], "truncated"),
    "trailing": (GOOD + b"\x00\x01", "trailing"),
    "huge_header": (b"\x00\x00\x08\x02\xff\xff\xff\xff\xff\xff\xff\xff" + b"\x00" * 10, "truncated"),
}


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_corrupt_idx(tmp_path, case, compress):
    data, fragment = CORRUPT[case]
    p = write_file(tmp_path / f"bad-{case}", data, compress)
    with pytest.raises(ds.IDXError) as exc:
        ds.read_idx(p)
    assert str(p) in str(exc.value)
    assert fragment in str(exc.value)
    assert isinstance(exc.value, ValueError)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda gz: gz[: len(gz) // 2],  # cut in the middle of the deflate stream
        lambda gz: gz[:-4],  # lost the length trailer
        lambda gz: gz[:5],  # cut inside the gzip header
        lambda gz: gz + b"garbage!",  # junk after the member
    ],
    ids=["half", "no_trailer", "header_only", "junk_after"],
)
def test_truncated_gzip(tmp_path, mangle):
    p = tmp_path / "t.gz"
    p.write_bytes(mangle(gzip.compress(GOOD, mtime=0)))
    with pytest.raises(ds.IDXError, match="gzip") as exc:
        ds.read_idx(p)
    assert str(p) in str(exc.value)


def test_corrupt_gzip_stream(tmp_path):
    p = tmp_path / "c.gz"
    p.write_bytes(_flip_deflate(GOOD * 50))
    with pytest.raises(ds.IDXError) as exc:
        ds.read_idx(p)
    assert str(p) in str(exc.value) and "gzip" in str(exc.value)


def test_missing_file_is_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        ds.read_idx(tmp_path / "nope")


# --------------------------------------------------------------------------
# Registry and helpers
# --------------------------------------------------------------------------


def test_registry_contents():
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    for key in ("mnist", "fashion-mnist"):
        spec = REAL_SPECS[key]
        assert [spec.files[r] for r in ds.FILE_ROLES] == names
        assert set(spec.checksums) == set(names)
        for value in spec.checksums.values():
            algo, _, digest = value.partition(":")
            assert algo == "md5" and len(digest) == 32 and int(digest, 16) >= 0
        assert spec.mirrors and all(m.startswith(("http://", "https://")) and m.endswith("/")
                                    for m in spec.mirrors)
        assert spec.num_classes == 10
    # Spot-check against the published values.
    assert REAL_SPECS["mnist"].checksums[names[0]].endswith("f68b3c2dcbeaaa9fbdd348bbdeb94873")
    assert REAL_SPECS["fashion-mnist"].checksums[names[0]].endswith("8d4fb7e6c68d591d4c3dfef9ec88bf0d")
    assert "apt-get install dataset-fashion-mnist" in REAL_SPECS["fashion-mnist"].hint


def test_get_spec_names():
    assert ds.get_spec("Fashion_MNIST").name == "fashion-mnist"
    with pytest.raises(ValueError, match="unknown data set"):
        ds.get_spec("cifar10")


def test_register(monkeypatch):
    monkeypatch.setattr(ds, "DATASETS", dict(ds.DATASETS))
    spec = ds.DatasetSpec("Mine", files={r: r for r in ds.FILE_ROLES}, checksums={}, mirrors=())
    assert ds.register(spec) is spec and ds.get_spec("mine") is spec
    with pytest.raises(ValueError, match="already registered"):
        ds.register(spec)
    ds.register(spec, overwrite=True)
    with pytest.raises(ValueError, match="lacks files"):
        ds.register(ds.DatasetSpec("x", files={}, checksums={}, mirrors=()))


def test_to_float():
    imgs = np.array([[[0, 255], [128, 1]], [[255, 255], [0, 0]]], dtype=np.uint8)
    out = ds.to_float(imgs)
    assert out.shape == (2, 4) and out.dtype == np.float32 and out.flags.c_contiguous
    assert out[0, 1] == 1.0 and out[0, 0] == 0.0 and out.max() == 1.0
    np.testing.assert_allclose(out[0], [0, 1, 128 / 255, 1 / 255], rtol=1e-6)
    out64 = ds.to_float(imgs, dtype=np.float64)
    assert out64.dtype == np.float64 and out64[0, 2] == 128 / 255
    with pytest.raises(TypeError):
        ds.to_float(imgs.astype(np.float32))
    with pytest.raises(TypeError):
        ds.to_float(imgs, dtype=np.int32)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's cache folder")
def test_cache_dir_linux(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ds.cache_dir("fashion_mnist") == tmp_path / "xdg" / "fastact" / "fashion-mnist"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # not absolute: ignored (XDG spec)
    assert ds.cache_dir("mnist") == tmp_path / "home" / ".cache" / "fastact" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert ds.cache_dir() == tmp_path / "home" / ".cache" / "fastact"


def test_cache_dir_macos_and_windows_unchanged(monkeypatch, tmp_path):
    """platformdirs' macOS and Windows classes give the folders fastact always used."""
    import platformdirs
    import platformdirs.macos
    import platformdirs.windows

    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(platformdirs, "PlatformDirs", platformdirs.macos.MacOS)
    assert ds.cache_dir("mnist") == tmp_path / "home" / "Library" / "Caches" / "fastact" / "mnist"
    # Windows asks the shell for the folder; this stands in for that call.
    local = str(tmp_path / "local")
    monkeypatch.setattr(platformdirs.windows, "get_win_folder",
                        lambda csidl: local if csidl == "CSIDL_LOCAL_APPDATA" else "elsewhere")
    monkeypatch.setattr(platformdirs, "PlatformDirs", platformdirs.windows.Windows)
    assert ds.cache_dir("mnist") == tmp_path / "local" / "fastact" / "mnist"


def test_legacy_cache_folder_still_found(env, tmp_path, monkeypatch, server):
    """Where platformdirs' folder differs from $XDG_CACHE_HOME/fastact (as on
    Windows), files that earlier releases put in the latter are still found,
    right after the new folder; downloads go to the new one."""
    import platformdirs

    new_root = tmp_path / "platformdirs_cache"
    monkeypatch.setattr(platformdirs, "user_cache_path", lambda *a, **k: new_root)
    legacy = env["cache"] / "fastact" / "mnist"
    assert [(o, d) for o, d in ds.search_dirs("mnist") if o == "cache"] == [
        ("cache", new_root / "mnist"), ("cache", legacy)]
    old = make_set(legacy, seed=7)
    make_set(env["system"] / "mnist", seed=8)
    assert_loaded(ds.load("mnist", download=False), old)
    new = make_set(new_root / "mnist", seed=9)
    assert_loaded(ds.load("mnist", download=False), new)

    spec, arrays = tiny_spec(server["root"])
    monkeypatch.setitem(ds.DATASETS, "tiny", spec)
    with pytest.raises(ds.DatasetNotFoundError) as exc:
        ds.load("tiny", download=False)
    assert str(new_root / "tiny") in str(exc.value) and str(env["cache"] / "fastact" / "tiny") in str(exc.value)
    assert_loaded(ds.load("tiny", mirrors=[server["base"] + "/b/"], timeout=5), arrays)
    assert sorted(p.name for p in (new_root / "tiny").iterdir()) == sorted(spec.files.values())


def test_legacy_cache_folder_not_listed_twice(env):
    # On Linux (and macOS with a current platformdirs) both are the same folder.
    if ds.cache_dir("mnist") != env["cache"] / "fastact" / "mnist":
        pytest.skip("platformdirs ignores XDG_CACHE_HOME on this platform")
    assert [o for o, _ in ds.search_dirs("mnist")].count("cache") == 1


# --------------------------------------------------------------------------
# Search order
# --------------------------------------------------------------------------


def test_search_order(env, tmp_path, monkeypatch):
    explicit = tmp_path / "explicit"
    monkeypatch.setenv("FASTACT_DATA", str(env["data"]))
    # Each location gets a set with a different number of training images.
    sets = {
        "path": make_set(explicit, n_train=1, seed=1),
        "env": make_set(env["data"] / "mnist", n_train=2, seed=2),
        "cache": make_set(env["cache"] / "fastact" / "mnist", n_train=3, seed=3, compress=False),
        "system": make_set(env["system"] / "mnist", n_train=4, seed=4),
    }
    assert [o for o, _ in ds.search_dirs("mnist", explicit)] == [
        "path", "path", "FASTACT_DATA", "cache", "system"]

    assert_loaded(ds.load("mnist", path=explicit, download=False), sets["path"])
    assert_loaded(ds.load("mnist", download=False), sets["env"])
    monkeypatch.delenv("FASTACT_DATA")
    assert_loaded(ds.load("mnist", download=False), sets["cache"])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty_cache"))
    assert_loaded(ds.load("mnist", download=False), sets["system"])
    assert ds.find("mnist")["train_images"].parent == env["system"] / "mnist"


def test_explicit_path_with_name_subdir_and_variants(env, tmp_path):
    root = tmp_path / "root"
    arrays = make_set(root / "fashion-mnist", compress=False, dotted=True)
    assert_loaded(ds.load("fashion_mnist", path=root, download=False), arrays)
    files = ds.find("fashion-mnist", root)
    assert files["test_labels"].name == "t10k-labels.idx1-ubyte"


def test_fastact_data_needs_name_subdir(env, monkeypatch):
    make_set(env["data"])  # files directly in $FASTACT_DATA: ignored (documented)
    monkeypatch.setenv("FASTACT_DATA", str(env["data"]))
    assert ds.find("mnist") is None
    arrays = make_set(env["data"] / "mnist", seed=9)
    assert_loaded(ds.load("mnist", download=False), arrays)


def test_incomplete_directory_is_skipped(env, tmp_path):
    explicit = tmp_path / "partial"
    make_set(explicit)
    (explicit / "t10k-labels-idx1-ubyte.gz").unlink()
    arrays = make_set(env["system"] / "mnist", seed=5)
    assert_loaded(ds.load("mnist", path=explicit, download=False), arrays)
    (env["system"] / "mnist" / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(ds.DatasetNotFoundError) as exc:
        ds.load("mnist", path=explicit, download=False)
    msg = str(exc.value)
    assert "incomplete, missing t10k-labels-idx1-ubyte.gz" in msg
    assert "incomplete, missing train-images-idx3-ubyte.gz" in msg


def test_not_found_without_download_lists_places(env, tmp_path, server):
    with pytest.raises(ds.DatasetNotFoundError) as exc:
        ds.load("mnist", path=tmp_path / "nowhere", download=False, mirrors=[server["base"] + "/b/"])
    msg = str(exc.value)
    for place in [tmp_path / "nowhere", env["cache"] / "fastact" / "mnist", env["system"] / "mnist"]:
        assert str(place) in msg
    assert "FASTACT_DATA is not set" in msg and "not attempted" in msg
    assert server["requests"] == []  # download=False really skips the download
    assert isinstance(exc.value, FileNotFoundError)


# --------------------------------------------------------------------------
# Content validation
# --------------------------------------------------------------------------


def test_label_out_of_range(env, tmp_path):
    d = tmp_path / "d"
    make_set(d, labels={"test_labels": np.array([0, 9, 10, 3], np.uint8)})
    with pytest.raises(ds.DatasetError, match=r"1 label\(s\) outside 0..9") as exc:
        ds.load("mnist", path=d, download=False)
    assert "t10k-labels-idx1-ubyte.gz" in str(exc.value)


def test_count_mismatch(env, tmp_path):
    d = tmp_path / "d"
    make_set(d, labels={"train_labels": np.arange(5, dtype=np.uint8)})  # 6 images
    with pytest.raises(ds.DatasetError, match="holds 6 images but .* holds 5 labels"):
        ds.load("mnist", path=d, download=False)


@pytest.mark.parametrize(
    "role, arr, fragment",
    [
        ("train_images", np.zeros((6, 15), np.uint8), "3-D image array"),
        ("train_images", np.zeros((6, 5, 3), np.int16), "uint8 pixels"),
        ("test_labels", np.zeros((4, 1), np.uint8), "1-D label array"),
        ("test_labels", np.zeros(4, np.float32), "integer labels"),
        ("test_images", np.zeros((4, 6, 3), np.uint8), "image size differs"),
    ],
)
def test_bad_shapes(env, tmp_path, role, arr, fragment):
    d = tmp_path / "d"
    make_set(d)
    write_file(d / (MNIST_NAMES[role] + ".gz"), idx_bytes(arr), compress=True)
    with pytest.raises(ds.DatasetError, match=fragment):
        ds.load("mnist", path=d, download=False)


# --------------------------------------------------------------------------
# Download (local HTTP server on 127.0.0.1 only)
# --------------------------------------------------------------------------


def _cache_files(env, name):
    d = env["cache"] / "fastact" / name
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_download_success(env, server, monkeypatch):
    spec, arrays = tiny_spec(server["root"])
    monkeypatch.setitem(ds.DATASETS, "tiny", spec)
    d = ds.load("tiny", mirrors=[server["base"] + "/b/"], timeout=5)
    assert_loaded(d, arrays)
    assert _cache_files(env, "tiny") == sorted(spec.files.values())  # no *.part left
    for fname in spec.files.values():
        assert (env["cache"] / "fastact" / "tiny" / fname).read_bytes() == \
            (server["root"] / "b" / fname).read_bytes()
    # Second load comes from the cache without any request.
    n = len(server["requests"])
    assert_loaded(ds.load("tiny", mirrors=[server["base"] + "/b/"], timeout=5), arrays)
    assert len(server["requests"]) == n


def test_download_wrong_checksum_rejected(env, server, monkeypatch):
    spec, _ = tiny_spec(server["root"], bad_checksum=True)
    monkeypatch.setitem(ds.DATASETS, "tiny", spec)
    with pytest.raises(ds.DatasetNotFoundError) as exc:
        ds.load("tiny", mirrors=[server["base"] + "/b/"], timeout=5)
    assert "does not match the known hash" in str(exc.value)  # pooch's words
    assert "train-images-idx3-ubyte.gz" in str(exc.value)
    assert _cache_files(env, "tiny") == []  # neither the file nor a temp file
    assert not (env["cache"] / "fastact" / "tiny").exists()


def test_download_first_mirror_404_then_second(env, server, monkeypatch):
    spec, arrays = tiny_spec(server["root"])
    monkeypatch.setitem(ds.DATASETS, "tiny", dataclasses.replace(
        spec, mirrors=(server["base"] + "/a/", server["base"] + "/b")))  # 2nd without slash
    assert_loaded(ds.load("tiny", timeout=5), arrays)
    assert "/a/train-images-idx3-ubyte.gz" in server["requests"]
    assert "/b/train-images-idx3-ubyte.gz" in server["requests"]
    assert _cache_files(env, "tiny") == sorted(spec.files.values())


def test_download_function_dest_and_force(tmp_path, server, monkeypatch):
    spec, arrays = tiny_spec(server["root"])
    monkeypatch.setitem(ds.DATASETS, "tiny", spec)
    dest = tmp_path / "dest"
    assert ds.download("tiny", dest=dest, mirrors=[server["base"] + "/b/"], timeout=5) == dest
    assert_loaded(ds.load("tiny", path=dest, download=False), arrays)
    n = len(server["requests"])
    ds.download("tiny", dest=dest, mirrors=[server["base"] + "/b/"], timeout=5)
    assert len(server["requests"]) == n  # existing files kept
    ds.download("tiny", dest=dest, mirrors=[server["base"] + "/b/"], timeout=5, force=True)
    assert len(server["requests"]) == n + 4


def test_download_timeout(env, server, monkeypatch):
    spec, _ = tiny_spec(server["root"])
    monkeypatch.setitem(ds.DATASETS, "tiny", spec)
    t0 = time.monotonic()
    with pytest.raises(ds.DatasetNotFoundError, match="timed out"):
        ds.load("tiny", mirrors=[server["base"] + "/slow/"], timeout=0.3)
    assert time.monotonic() - t0 < 1.4
    assert _cache_files(env, "tiny") == []


def test_download_offline_message(env):
    # Fashion-MNIST's registered mirrors point at a closed port (autouse fixture).
    with pytest.raises(ds.DatasetNotFoundError) as exc:
        ds.load("fashion-mnist", timeout=5)
    msg = str(exc.value)
    assert "127.0.0.1" in msg and "Download failed" in msg
    assert str(env["cache"] / "fastact" / "fashion-mnist") in msg
    assert str(env["system"] / "fashion-mnist") in msg
    assert "put the four files" in msg and "FASTACT_DATA=<DIR>" in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    assert _cache_files(env, "fashion-mnist") == []


def test_download_unreachable_mirror_argument(env):
    url = f"http://127.0.0.1:{closed_port()}/mnist/"
    with pytest.raises(ds.DatasetNotFoundError) as exc:
        ds.load("mnist", mirrors=[url], timeout=5)
    assert url + "train-images-idx3-ubyte.gz" in str(exc.value)
    assert "apt-get" not in str(exc.value)  # the Debian hint is Fashion-MNIST only


def test_imports_stay_light():
    """`import fastact` imports neither library; fastact.datasets imports pooch
    (and requests) only when it downloads."""
    code = ("import sys, fastact; a = {m for m in ('pooch', 'platformdirs', 'requests') if m in sys.modules}; "
            "import fastact.datasets; b = {m for m in ('pooch', 'requests') if m in sys.modules}; "
            "print(sorted(a), sorted(b))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "[]"]


def test_download_without_pooch(env, monkeypatch):
    """Without the train extra, a missing data set says what to install, and
    files on disk still load."""
    monkeypatch.setitem(sys.modules, "pooch", None)  # makes `import pooch` fail
    with pytest.raises(ds.DatasetNotFoundError) as exc:
        ds.load("mnist", timeout=5)
    assert "pip install 'fastact[train]'" in str(exc.value)
    assert str(env["system"] / "mnist") in str(exc.value)
    arrays = make_set(env["system"] / "mnist")
    assert_loaded(ds.load("mnist"), arrays)


def test_download_rejects_non_http_mirror(env, tmp_path):
    with pytest.raises(ValueError, match="not an http"):
        ds.download("mnist", dest=tmp_path / "d", mirrors=[tmp_path.as_uri() + "/"])


# --------------------------------------------------------------------------
# Interrupted and corrupt downloads leave nothing; the next run succeeds
# --------------------------------------------------------------------------


@pytest.mark.parametrize("with_checksums", [True, False], ids=["checksums", "no_checksums"])
def test_download_cut_halfway_leaves_nothing(env, server, monkeypatch, with_checksums):
    # Without a checksum the cut is caught by the announced Content-Length.
    spec, arrays = tiny_spec(server["root"], with_checksums=with_checksums)
    monkeypatch.setitem(ds.DATASETS, "tiny", spec)
    with pytest.raises(ds.DatasetNotFoundError) as exc:
        ds.load("tiny", mirrors=[server["base"] + "/cut/"], timeout=5)
    assert server["base"] + "/cut/train-images-idx3-ubyte.gz" in str(exc.value)
    assert "IncompleteRead" in str(exc.value)
    assert _cache_files(env, "tiny") == []  # neither the file nor pooch's temporary file
    assert_loaded(ds.load("tiny", mirrors=[server["base"] + "/b/"], timeout=5), arrays)
    assert _cache_files(env, "tiny") == sorted(spec.files.values())


def test_download_wrong_bytes_leave_nothing(env, server, monkeypatch):
    spec, arrays = tiny_spec(server["root"])
    monkeypatch.setitem(ds.DATASETS, "tiny", spec)
    with pytest.raises(ds.DatasetNotFoundError) as exc:
        ds.load("tiny", mirrors=[server["base"] + "/wrong/"], timeout=5)
    assert "does not match the known hash" in str(exc.value)
    assert _cache_files(env, "tiny") == []
    assert_loaded(ds.load("tiny", mirrors=[server["base"] + "/b/"], timeout=5), arrays)


def test_download_cut_then_next_mirror(env, server, monkeypatch):
    spec, arrays = tiny_spec(server["root"])
    monkeypatch.setitem(ds.DATASETS, "tiny", spec)
    mirrors = [server["base"] + "/cut/", server["base"] + "/b/"]
    assert_loaded(ds.load("tiny", mirrors=mirrors, timeout=5), arrays)
    for fname in spec.files.values():
        assert server["requests"].count(f"/cut/{fname}") == 1
        assert server["requests"].count(f"/b/{fname}") == 1
    assert _cache_files(env, "tiny") == sorted(spec.files.values())


@pytest.mark.parametrize("mode", ["flaky", "flakywrong"])
def test_next_run_retries_and_succeeds(env, server, monkeypatch, mode):
    """Without retries, a failed first transfer fails the run; the next run succeeds."""
    spec, arrays = tiny_spec(server["root"])
    monkeypatch.setitem(ds.DATASETS, "tiny", spec)
    mirror = [f"{server['base']}/{mode}/"]
    with pytest.raises(ds.DatasetNotFoundError):
        ds.load("tiny", mirrors=mirror, timeout=5)
    assert _cache_files(env, "tiny") == []
    assert_loaded(ds.load("tiny", mirrors=mirror, timeout=5), arrays)
    assert server["requests"].count(f"/{mode}/train-images-idx3-ubyte.gz") == 2


@pytest.mark.parametrize("mode", ["flaky", "flakywrong"])
def test_download_retried_within_one_run(env, server, monkeypatch, mode):
    """With the shipped retry count pooch tries again (after a 1 s pause)."""
    assert SHIPPED_RETRIES >= 1
    monkeypatch.setattr(ds, "DOWNLOAD_RETRIES", SHIPPED_RETRIES)
    spec, arrays = tiny_spec(server["root"])
    monkeypatch.setitem(ds.DATASETS, "tiny", spec)
    assert_loaded(ds.load("tiny", mirrors=[f"{server['base']}/{mode}/"], timeout=5), arrays)
    for fname in spec.files.values():
        tries = 2 if fname.startswith("train-images") else 1
        assert server["requests"].count(f"/{mode}/{fname}") == tries
    assert _cache_files(env, "tiny") == sorted(spec.files.values())


_CHILD = """
import json, sys
import fastact.datasets as ds
cfg = json.loads(sys.argv[1])
ds.register(ds.DatasetSpec("tiny", files=cfg["files"], checksums=cfg["checksums"], mirrors=()))
ds.SYSTEM_DATA_DIRS[:] = []
ds.load("tiny", mirrors=[cfg["mirror"]], timeout=30)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_download_interrupted(env, server, monkeypatch, sig):
    """A download stopped halfway (Ctrl-C or kill) leaves no file under its
    name, and after Ctrl-C no temporary file either; the next run succeeds
    (and sweeps up the temporary file a kill left, once it is stale)."""
    spec, arrays = tiny_spec(server["root"])
    monkeypatch.setitem(ds.DATASETS, "tiny", spec)
    cfg = {"files": dict(spec.files), "checksums": dict(spec.checksums),
           "mirror": server["base"] + "/stall/"}
    # env has set XDG_CACHE_HOME in os.environ, which the child inherits.
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert server["state"]["stalled"].wait(60), "the child never started downloading"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    cache = env["cache"] / "fastact" / "tiny"
    assert not any((cache / fname).exists() for fname in spec.files.values())
    if sig == signal.SIGINT:
        assert "KeyboardInterrupt" in err
        assert _cache_files(env, "tiny") == []
    else:
        # The killed child could not remove pooch's temporary file.  Once it
        # is an hour old the next download deletes it; a fresh one (a live
        # download elsewhere, as far as anyone can tell) is kept.
        (left,) = _cache_files(env, "tiny")
        assert left.startswith("tmp")
        hour_ago = time.time() - 3700
        os.utime(cache / left, (hour_ago, hour_ago))
        (cache / "tmpfresh_12").write_bytes(b"partial")
    server["state"]["release"].set()
    assert_loaded(ds.load("tiny", mirrors=[server["base"] + "/b/"], timeout=5), arrays)
    extra = [] if sig == signal.SIGINT else ["tmpfresh_12"]
    assert _cache_files(env, "tiny") == sorted([*spec.files.values(), *extra])


_DAMAGE = {
    # name: (damage done to the gzipped IDX file, expected fragment of the message)
    "truncated": (lambda gz: gzip.compress(gzip.decompress(gz)[:-5], mtime=0), "truncated"),
    "bad_magic": (lambda gz: gzip.compress(b"\x01\x02" + gzip.decompress(gz)[2:], mtime=0),
                  "bad magic"),
    "dimensions": (lambda gz: gzip.compress(idx_bytes(np.zeros((4, 7, 3), np.uint8)), mtime=0),
                   "image size differs"),
    "gzip": (lambda gz: gz[: len(gz) // 2], "corrupt or truncated gzip"),
}


@pytest.mark.parametrize("damage", sorted(_DAMAGE))
def test_damaged_cached_file_named_then_recovered(env, server, monkeypatch, tmp_path, damage):
    spec, arrays = tiny_spec(server["root"])
    monkeypatch.setitem(ds.DATASETS, "tiny", spec)
    mirror = [server["base"] + "/b/"]
    ds.load("tiny", mirrors=mirror, timeout=5)
    target = env["cache"] / "fastact" / "tiny" / "t10k-images-idx3-ubyte.gz"
    mangle, fragment = _DAMAGE[damage]
    target.write_bytes(mangle(target.read_bytes()))
    with pytest.raises(ValueError) as exc:  # IDXError or DatasetError
        ds.load("tiny", mirrors=mirror, timeout=5)
    msg = str(exc.value)
    assert str(target) in msg and fragment in msg
    assert ("delete it" in msg) == isinstance(exc.value, ds.IDXError)
    # The same file outside the cache: no advice to delete it.
    elsewhere = tmp_path / "copy"
    elsewhere.mkdir()
    for fname in spec.files.values():
        (elsewhere / fname).write_bytes((target.parent / fname).read_bytes())
    with pytest.raises(ValueError) as exc:
        ds.load("tiny", path=elsewhere, download=False)
    assert str(elsewhere) in str(exc.value) and "delete it" not in str(exc.value)
    # Following the advice: the next run downloads the file again.
    target.unlink()
    assert_loaded(ds.load("tiny", mirrors=mirror, timeout=5), arrays)
    assert server["requests"].count("/b/t10k-images-idx3-ubyte.gz") == 2


# --------------------------------------------------------------------------
# The real Fashion-MNIST from Debian's dataset-fashion-mnist, if installed
# --------------------------------------------------------------------------

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


def test_default_system_dir():
    assert "/usr/share/datasets" in ds.SYSTEM_DATA_DIRS


@pytest.mark.skipif(not DEBIAN_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_debian_fashion_mnist(monkeypatch, tmp_path):
    monkeypatch.delenv("FASTACT_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty"))
    monkeypatch.setattr(ds, "SYSTEM_DATA_DIRS", [str(DEBIAN_DIR.parent)])
    d = ds.load("fashion-mnist", download=False)
    assert d.x_train.shape == (60000, 28, 28) and d.x_test.shape == (10000, 28, 28)
    assert d.y_train.shape == (60000,) and d.y_test.shape == (10000,)
    assert d.x_train.dtype == np.uint8 and d.y_train.dtype == np.uint8
    for y in (d.y_train, d.y_test):
        assert y.min() == 0 and y.max() == 9
    assert np.bincount(d.y_train).tolist() == [6000] * 10
    assert ds.find("fashion-mnist")["train_images"].parent == DEBIAN_DIR
