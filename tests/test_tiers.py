"""The test tiers' guard (tests/conftest.py), run on small pytest projects that use this
suite's own conftest.py and markers: a test reaching MNIST without the ``integration`` marker
stops the run, whatever ``-m`` selects, and outside ``integration`` no mirror is reachable."""

from __future__ import annotations

import os
import tomllib

import pytest
from conftest import NO_MIRROR, ROOT

FAST_TIER = "not (integration or browser or slow) or e2e"  # the Makefile's `make test`

PROJECT = """
import os

import pytest


@pytest.fixture(scope="session")
def built_on_it(mnist_mirror):
    return mnist_mirror


{unmarked}


@pytest.mark.integration
def test_marked(built_on_it):
    assert built_on_it.name == "mirror"
    assert os.environ["AEZOO_MNIST_MIRROR"] == str(built_on_it)


@pytest.mark.integration
@pytest.mark.e2e
def test_end_to_end(mnist_mirror):
    pass


def test_unit():
    assert os.environ["AEZOO_MNIST_MIRROR"] == {no_mirror!r}
"""

UNMARKED = """
def test_direct(mnist_mirror):
    pass


def test_through_a_fixture(built_on_it):
    pass
"""


@pytest.fixture
def project(pytester: pytest.Pytester, tmp_path, monkeypatch) -> pytest.Pytester:
    """A pytest project with a copy of tests/conftest.py, pyproject.toml's markers and a
    stand-in MNIST mirror (one empty file: only the guard looks at it)."""
    pytester.makeconftest((ROOT / "tests" / "conftest.py").read_text())
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    markers = "".join(f"    {line}\n" for line in options["ini_options"]["markers"])
    pytester.makeini(f"[pytest]\naddopts = --strict-markers\nmarkers =\n{markers}")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "train-images-idx3-ubyte.gz").touch()
    monkeypatch.setenv("AEZOO_MNIST_MIRROR", str(mirror))
    # The copy's session fixture points MLflow at its own store, in this process: restored.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", os.environ.get("MLFLOW_TRACKING_URI", ""))
    return pytester


@pytest.mark.parametrize("selection", [[], ["-m", FAST_TIER], ["-m", "integration"]])
def test_a_test_reaching_mnist_unmarked_stops_the_run_in_every_tier(project, selection):
    project.makepyfile(PROJECT.format(unmarked=UNMARKED, no_mirror=NO_MIRROR))
    result = project.runpytest(*selection)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: 2 test(s) use real MNIST (mnist_mirror, *) without @pytest.mark.integration:",
            "  test_*.py::test_direct",
            "  test_*.py::test_through_a_fixture",
        ]
    )
    assert "test_marked" not in result.stderr.str() and "test_unit" not in result.stderr.str()
    assert "passed" not in result.stdout.str()  # stopped before any test ran


def test_marked_tests_run_and_the_fast_tier_keeps_only_the_end_to_end_one(project):
    project.makepyfile(PROJECT.format(unmarked="", no_mirror=NO_MIRROR))
    project.runpytest().assert_outcomes(passed=3)
    fast = project.runpytest("-m", FAST_TIER, "-v")
    fast.assert_outcomes(passed=2, deselected=1)
    fast.stdout.fnmatch_lines(["*::test_end_to_end PASSED*", "*::test_unit PASSED*"])


def test_make_test_selects_the_fast_tier_checked_here_and_test_all_everything():
    lines = (ROOT / "Makefile").read_text().splitlines()
    assert f"FAST_TESTS := {FAST_TIER}" in lines
    recipes = {
        target: lines[lines.index(next(line for line in lines if line.startswith(target))) + 1]
        for target in ("test:", "test-all:")
    }
    fast = '$(BIN)/python -m pytest -m "$(FAST_TESTS)" -n $(WORKERS) --dist loadfile'
    assert recipes["test:"].strip() == fast
    assert recipes["test-all:"].strip() == "$(BIN)/python -m pytest"


def test_numpy_runs_the_one_blas_thread_conftest_asks_for():
    """conftest.py sets OPENBLAS_NUM_THREADS before NumPy loads (spinning BLAS threads cost
    the unit tier ~40% of its CPU time on 2 busy cores); a NumPy import moved ahead of it
    would silently undo that."""
    import numpy  # noqa: F401
    from threadpoolctl import threadpool_info

    blas = [pool for pool in threadpool_info() if pool["internal_api"] == "openblas"]
    assert blas, threadpool_info()
    wanted = int(os.environ["OPENBLAS_NUM_THREADS"])  # 1, unless the caller chose otherwise
    assert {pool["num_threads"] for pool in blas} == {wanted}, blas
