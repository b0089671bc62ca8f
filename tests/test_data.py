"""Fetching, verifying, decoding and splitting MNIST: real files, and every kind of bad one."""

import gzip
import http.server
import shutil
import threading
from functools import partial

import numpy as np
import pytest
from conftest import data_config

from aezoo.data import (
    MIRROR_ENV,
    MNIST_FILES,
    fetch_mnist,
    load_prepared,
    prepare_mnist,
    progress_digits,
    read_idx,
)
from aezoo.errors import DataError
from aezoo.io import sha256_of

IMAGES = MNIST_FILES["test_images"]


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.fixture
def serve(tmp_path):
    """Serve a directory over HTTP on 127.0.0.1 (a free port); yields a base-URL maker."""
    servers = []

    def start(directory):
        handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()


@pytest.mark.integration
def test_fetch_from_a_mirror_directory_verifies_checksums(
    tmp_path, mnist_mirror, monkeypatch, base_params
):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    paths = fetch_mnist(data_config(base_params, mirror=str(mnist_mirror)), tmp_path / "raw")
    assert [p.name for p in paths] == [spec.name for spec in MNIST_FILES.values()]
    for path, spec in zip(paths, MNIST_FILES.values(), strict=True):
        assert sha256_of(path) == spec.sha256
    assert _leftovers(tmp_path / "raw") == sorted(p.name for p in paths)


@pytest.mark.integration
def test_fetch_over_http_from_a_mirror_url(tmp_path, mnist_mirror, serve, monkeypatch, base_params):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    base = serve(mnist_mirror)
    paths = fetch_mnist(data_config(base_params, mirror=base), tmp_path / "raw")
    assert all(sha256_of(p) == s.sha256 for p, s in zip(paths, MNIST_FILES.values(), strict=True))


@pytest.mark.integration
def test_environment_mirror_overrides_params(tmp_path, mnist_mirror, monkeypatch, base_params):
    monkeypatch.setenv(MIRROR_ENV, str(mnist_mirror))
    paths = fetch_mnist(data_config(base_params, mirror="/nonexistent"), tmp_path / "raw")
    assert len(paths) == 4


@pytest.mark.integration
def test_checksum_mismatch_over_http_leaves_nothing(
    tmp_path, mnist_mirror, serve, monkeypatch, base_params
):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    corrupt = tmp_path / "corrupt_mirror"
    shutil.copytree(mnist_mirror, corrupt)
    data = bytearray((corrupt / IMAGES.name).read_bytes())
    data[1000] ^= 0xFF
    (corrupt / IMAGES.name).write_bytes(bytes(data))
    out = tmp_path / "raw"
    with pytest.raises(DataError, match=r"checksum mismatch for t10k-images-idx3-ubyte\.gz"):
        fetch_mnist(data_config(base_params, mirror=serve(corrupt)), out)
    assert IMAGES.name not in _leftovers(out)
    assert not any(name.startswith(".") for name in _leftovers(out))


def test_unreachable_source_without_mirror_says_how_to_set_one(tmp_path, monkeypatch, base_params):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    config = data_config(
        base_params, sources=["http://127.0.0.1:9/"], download_retries=1, download_timeout_s=2
    )
    out = tmp_path / "raw"
    with pytest.raises(DataError) as error:
        fetch_mnist(config, out)
    message = str(error.value)
    assert "could not fetch train-images-idx3-ubyte.gz" in message
    assert "http://127.0.0.1:9/train-images-idx3-ubyte.gz" in message
    assert MIRROR_ENV in message and "data.mirror" in message
    assert _leftovers(out) == []


def test_missing_mirror_file_is_named(tmp_path, monkeypatch, base_params):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    with pytest.raises(DataError, match=r"empty_mirror/train-images-idx3-ubyte\.gz: no such file"):
        fetch_mnist(
            data_config(base_params, mirror=str(tmp_path / "empty_mirror")), tmp_path / "raw"
        )


@pytest.mark.integration
def test_truncated_gzip_is_a_clear_error(tmp_path, mnist_mirror):
    truncated = tmp_path / IMAGES.name
    truncated.write_bytes((mnist_mirror / IMAGES.name).read_bytes()[:50_000])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: not a complete gzip file"):
        read_idx(truncated, IMAGES)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ((2049, 10000, 28, 28), "bad IDX magic number 2049, expected 2051"),
        ((2051, 10000, 28, 27), r"IDX shape \(10000, 28, 27\), expected \(10000, 28, 28\)"),
        ((2051, 9999, 28, 28), r"IDX shape \(9999, 28, 28\)"),
    ],
)
def test_bad_idx_header_is_a_clear_error(tmp_path, header, message):
    path = tmp_path / IMAGES.name
    body = np.zeros(10000 * 28 * 28, np.uint8).tobytes()
    path.write_bytes(gzip.compress(np.array(header, ">u4").tobytes() + body))
    with pytest.raises(DataError, match=message):
        read_idx(path, IMAGES)


def test_short_body_is_a_clear_error(tmp_path):
    path = tmp_path / IMAGES.name
    path.write_bytes(gzip.compress(np.array([2051, 10000, 28, 28], ">u4").tobytes() + b"\0" * 99))
    with pytest.raises(DataError, match="99 data bytes, expected 7840000"):
        read_idx(path, IMAGES)


@pytest.mark.integration
def test_prepare_refuses_a_tampered_raw_file_and_writes_nothing(
    tmp_path, mnist_mirror, base_params
):
    raw = tmp_path / "raw"
    shutil.copytree(mnist_mirror, raw)
    (raw / IMAGES.name).write_bytes(b"not the real file")
    out = tmp_path / "prepared" / "clean.npz"
    with pytest.raises(DataError, match="checksum mismatch"):
        prepare_mnist(data_config(base_params), raw, out)
    assert not out.exists() and _leftovers(out.parent) == []


@pytest.mark.integration
def test_prepared_splits_have_the_canonical_shapes_and_mean(full_prepared):
    splits = load_prepared(full_prepared / "clean.npz")
    assert splits["train"].x.shape == (55000, 28, 28)
    assert splits["val"].x.shape == (5000, 28, 28)
    assert splits["test"].x.shape == (10000, 28, 28)
    assert all(s.x.dtype == np.uint8 for s in splits.values())
    assert round(float(splits["train"].x.mean() / 255), 4) == 0.1307
    # the validation split is the last 5,000 training images, never the test set
    assert splits["test"].y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert splits["train"].y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


@pytest.mark.integration
def test_prepare_holds_out_the_last_validation_size_images_then_takes_subsets(
    tmp_path, mnist_mirror, base_params
):
    config = data_config(
        base_params, validation_size=10000, train_subset=100, val_subset=20, test_subset=None
    )
    assert not config.full
    summary = prepare_mnist(config, mnist_mirror, tmp_path / "clean.npz")
    assert summary["shapes"]["x_train"] == [100, 28, 28]
    assert summary["shapes"]["x_val"] == [20, 28, 28]
    assert summary["shapes"]["x_test"] == [10000, 28, 28]
    everything = read_idx(
        mnist_mirror / MNIST_FILES["train_images"].name, MNIST_FILES["train_images"]
    )
    splits = load_prepared(tmp_path / "clean.npz")
    np.testing.assert_array_equal(splits["train"].x, everything[:100])
    np.testing.assert_array_equal(splits["val"].x, everything[50000:50020])


def test_progress_digits_are_the_first_of_each_class_then_the_next():
    labels = np.array([3, 0, 0, 1, 2, 5, 4, 6, 7, 8, 9, 1, 3])
    chosen = progress_digits(labels, 12)
    assert chosen.dtype == np.int64
    assert list(labels[chosen]) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert list(chosen[:10]) == [1, 3, 4, 0, 6, 5, 7, 8, 9, 10]
    assert list(chosen[10:]) == [2, 11]  # the second 0 and the second 1
    assert list(progress_digits(labels, 3)) == [1, 3, 4]
    assert len(progress_digits(labels, 100)) == len(labels)  # every image once at most
