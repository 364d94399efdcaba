"""The downloader against a local HTTP server: mirrors in turn, checksums, timeouts, atomic
writes, nothing half-written left behind, and load_mnist end to end."""

import dataclasses
import hashlib
import multiprocessing
import os
import threading
import time

import numpy as np
import pytest
from _http import LocalServer, Route, unreachable_url, write_fake_mnist

from dlscratch.datasets import DATASETS, DatasetNotFoundError, DownloadError, download_file, load_mnist
from dlscratch.datasets import download as download_module

NAME = "train-labels-idx1-ubyte.gz"
BODY = bytes(range(256)) * 64  # 16 KiB: several read chunks
MD5 = hashlib.md5(BODY).hexdigest()
TIMEOUT = 0.5


@pytest.fixture
def server():
    with LocalServer() as s:
        yield s


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "cache"


def _serve(server, prefix, **route):
    """Serve NAME under /<prefix>/ as ``Route(**route)``; returns the mirror URL."""
    server.routes[f"/{prefix}/{NAME}"] = Route(**route)
    return server.url(f"{prefix}/")


def _download(dest, mirrors, md5=MD5, **kwargs):
    return download_file(NAME, dest, mirrors, md5, timeout=TIMEOUT, progress=False, **kwargs)


def _assert_only(folder, *names):
    """``folder`` holds exactly ``names``: no temporary or partial file left."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


def _assert_fails(dest, mirrors, *reasons):
    """Every mirror fails, each for the reason given; the folder stays empty."""
    with pytest.raises(DownloadError) as info:
        _download(dest, mirrors)
    error = info.value
    assert [url for url, _ in error.failures] == [m + NAME for m in mirrors]
    for (_, got), expected in zip(error.failures, reasons, strict=True):
        assert expected in got
    assert NAME in str(error) and str(dest) in str(error)
    _assert_only(dest)
    return error


def test_good_mirror(server, dest):
    path = _download(dest, [_serve(server, "a", body=BODY), _serve(server, "b", body=BODY)])
    assert path == dest / NAME and path.read_bytes() == BODY
    assert server.requests == [f"/a/{NAME}"]  # the second mirror is never asked
    _assert_only(dest, NAME)


def test_progress_bar_on_stderr(server, dest, capsys, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    download_file(NAME, dest, [_serve(server, "a", body=BODY)], MD5, timeout=TIMEOUT, progress=True)
    out, err = capsys.readouterr()
    assert out == "" and NAME in err and "16.0k" in err


def test_checksum_mismatch_falls_through(server, dest):
    bad = _serve(server, "bad", body=BODY[::-1])
    good = _serve(server, "good", body=BODY)
    assert _download(dest, [bad, good]).read_bytes() == BODY
    assert server.requests == [f"/bad/{NAME}", f"/good/{NAME}"]
    _assert_only(dest, NAME)


@pytest.mark.parametrize("dead", ["closed port", "404", "500"])
def test_dead_mirror_falls_through(server, dest, dead):
    if dead == "closed port":
        mirror = unreachable_url()
    elif dead == "404":
        mirror = server.url("nothing-here/")
    else:
        mirror = _serve(server, "broken", status=500, body=b"oops")
    assert _download(dest, [mirror, _serve(server, "good", body=BODY)]).read_bytes() == BODY
    _assert_only(dest, NAME)


def test_all_mirrors_fail(server, dest):
    mirrors = [
        unreachable_url(),
        server.url("missing/"),
        _serve(server, "error", status=500),
        _serve(server, "corrupt", body=b"not the file"),
    ]
    _assert_fails(
        dest,
        mirrors,
        "Connection refused",
        "HTTP 404",
        "HTTP 500",
        f"checksum mismatch: expected md5 {MD5}",
    )


def test_truncated_body(server, dest):
    mirror = _serve(server, "short", body=BODY[:1000], content_length=len(BODY))
    _assert_fails(dest, [mirror], f"truncated: expected {len(BODY)} bytes (Content-Length), got 1000")


@pytest.mark.parametrize("stall_after", [None, 1000], ids=["before headers", "mid body"])
def test_stalled_mirror_times_out(server, dest, stall_after):
    mirror = _serve(server, "slow", body=BODY, stall=10, stall_after=stall_after)
    start = time.monotonic()
    _assert_fails(dest, [mirror], f"timed out after {TIMEOUT:g} s")
    assert time.monotonic() - start < 5


def test_redirect_loop_ends(server, dest):
    server.routes[f"/a/{NAME}"] = Route(status=302, location=f"/b/{NAME}")
    server.routes[f"/b/{NAME}"] = Route(status=302, location=f"/a/{NAME}")
    _assert_fails(dest, [server.url("a/")], "HTTP 302 The HTTP server returned a redirect error")


def test_redirect_followed(server, dest):
    server.routes[f"/old/{NAME}"] = Route(status=301, location=f"/new/{NAME}")
    _serve(server, "new", body=BODY)
    assert _download(dest, [server.url("old/")]).read_bytes() == BODY


def test_failure_keeps_an_existing_file(server, dest):
    dest.mkdir()
    (dest / NAME).write_bytes(b"previous")
    with pytest.raises(DownloadError):
        _download(dest, [_serve(server, "bad", body=b"wrong")])
    assert (dest / NAME).read_bytes() == b"previous"
    _assert_only(dest, NAME)


def test_no_checksum_given(server, dest):
    assert _download(dest, [_serve(server, "a", body=b"anything")], md5=None).read_bytes() == b"anything"


def test_keyboard_interrupt_leaves_nothing(dest, monkeypatch):
    class Interrupted:
        """A response that delivers one chunk, then the user presses Ctrl-C."""

        def __init__(self):
            self.headers = {"Content-Length": str(len(BODY))}
            self.chunks = iter([BODY[:1000]])

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read1(self, size):
            try:
                return next(self.chunks)
            except StopIteration:
                raise KeyboardInterrupt from None

    monkeypatch.setattr(download_module, "urlopen", lambda *args, **kwargs: Interrupted())
    with pytest.raises(KeyboardInterrupt):
        _download(dest, ["http://127.0.0.1:9/"])
    _assert_only(dest)


def test_two_processes_download_the_same_file(server, dest):
    """Both downloads are in flight at once (the server holds both requests until the
    second arrives); each writes its own temporary file, and one good file remains."""
    mirror = _serve(server, "a", body=BODY, barrier=threading.Barrier(2))
    ctx = multiprocessing.get_context("spawn")
    workers = [
        ctx.Process(target=download_file, args=(NAME, dest, [mirror], MD5), kwargs={"progress": False})
        for _ in range(2)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0]
    assert server.requests == [f"/a/{NAME}"] * 2
    assert (dest / NAME).read_bytes() == BODY
    _assert_only(dest, NAME)


def test_load_mnist_from_fake_mirror(server, tmp_path, monkeypatch):
    """load_mnist end to end: two files already cached, the other two fetched past a dead
    mirror, checked against injected checksums."""
    md5 = write_fake_mnist(tmp_path / "mirror", n_train=20, n_test=10)
    mirror = server.serve_folder("mnist", tmp_path / "mirror")
    spec = dataclasses.replace(DATASETS["mnist"], mirrors=(unreachable_url(), mirror), md5=md5)
    monkeypatch.setitem(DATASETS, "mnist", spec)
    monkeypatch.setenv("DLSCRATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    cache = tmp_path / "data" / "mnist"
    cache.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (cache / name).write_bytes((tmp_path / "mirror" / name).read_bytes())

    (x_train, t_train), (x_test, t_test) = load_mnist()

    assert server.requests == ["/mnist/train-labels-idx1-ubyte.gz", "/mnist/t10k-images-idx3-ubyte.gz"]
    assert x_train.shape == (20, 784) and x_test.shape == (10, 784)
    assert x_train.dtype == np.float32 and t_train.tolist() == [i % 10 for i in range(20)]
    assert t_test.tolist() == [i % 10 for i in range(10)]
    _assert_only(cache, *md5)
    load_mnist()  # now everything is local
    assert len(server.requests) == 2


def test_load_mnist_all_mirrors_fail(server, tmp_path, monkeypatch):
    mirrors = (unreachable_url(), server.url("empty/"))
    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(DATASETS["mnist"], mirrors=mirrors))
    monkeypatch.setenv("DLSCRATCH_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist()
    message = str(info.value)
    folder = tmp_path / "mnist"
    for text in [str(folder), *DATASETS["mnist"].md5, "Connection refused", "HTTP 404", *mirrors]:
        assert text in message
    assert info.value.folder == folder and len(info.value.missing) == 4
    _assert_only(folder)


# ---------------------------------------------------------------- limits: size, deadline, leftovers


def test_an_endless_body_is_cut_at_the_files_size(server, dest):
    """A body that never ends (no Content-Length, the connection never closes) is abandoned
    once it passes the file's size; the next mirror delivers."""
    endless = _serve(server, "a", body=BODY, endless=True, send_length=False)
    server.routes["/b/" + NAME] = Route(body=BODY)
    path = _download(dest, [endless, server.url("b/")], max_bytes=len(BODY))
    assert path.read_bytes() == BODY
    assert server.requests == [f"/a/{NAME}", f"/b/{NAME}"]
    _assert_only(dest, NAME)


def test_a_body_larger_than_the_file_is_refused(server, dest):
    mirror = _serve(server, "a", body=BODY + b"x", send_length=False)
    with pytest.raises(DownloadError) as info:
        _download(dest, [mirror], max_bytes=len(BODY))
    assert "too large" in info.value.failures[0][1]
    _assert_only(dest)


def test_an_announced_size_beyond_the_cap_is_refused_unread(server, dest):
    mirror = _serve(server, "a", body=BODY, content_length=10**12)
    with pytest.raises(DownloadError) as info:
        _download(dest, [mirror], max_bytes=len(BODY))
    assert "too large" in info.value.failures[0][1]
    _assert_only(dest)


def test_a_trickle_is_stopped_at_the_deadline(server, dest):
    """One byte every 0.2 s never trips the per-read timeout (0.5 s); the deadline ends it."""
    mirror = _serve(server, "a", body=BODY, trickle=0.2)
    started = time.monotonic()
    with pytest.raises(DownloadError) as info:
        _download(dest, [mirror], deadline=1.0)
    assert "not complete after 1 s (the deadline)" in info.value.failures[0][1]
    assert time.monotonic() - started < 10
    _assert_only(dest)


def test_a_killed_downloads_temporary_file_is_removed(server, dest):
    dest.mkdir()
    dead = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(0,))
    dead.start()
    dead.join()
    abandoned = dest / f".{NAME}.{dead.pid}.0badc0de.part"  # as a process killed mid-download leaves it
    alive = dest / f".{NAME}.{os.getpid()}.12345678.part"  # a download in progress in this process
    abandoned.write_bytes(b"half")
    alive.write_bytes(b"half")
    _download(dest, [_serve(server, "a", body=BODY)])
    assert not abandoned.exists() and alive.exists()
