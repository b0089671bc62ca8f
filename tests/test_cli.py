"""The stage entry points' plumbing: quiet logs, fast answers to bad arguments."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aezoo.cli import NATIVE_LOG_LINE

ROOT = Path(__file__).resolve().parents[1]
STAGE_SCRIPTS = sorted(
    path.name for path in (ROOT / "pipeline").glob("*.py") if "aezoo.cli" in path.read_text()
)
PER_VARIANT_STAGES = ["train.py", "evaluate.py", "render.py", "track.py"]

NATIVE_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796293167.023002    4424 port.cc:153] oneDNN custom operations are on.",
    "E0000 00:00:1796293362.702544    4423 cuda_platform.cc:52] failed call to cuInit: ...",
    "W1203 10:22:28.123456   12 gpu_device.cc:2344] Cannot dlopen some GPU libraries.",
]
OWN_LINES = ["epoch   1/2  loss 0.2", "error: variants.x: no such variant", "I think, therefore"]


def run_python(code: str, *args: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("line", NATIVE_LINES)
def test_native_log_lines_are_recognised(line: str) -> None:
    assert NATIVE_LOG_LINE.match(line.encode())


@pytest.mark.parametrize(
    "line", [*OWN_LINES, "F0000 00:00:1796293362.7  4423 x.cc:52] Check failed: the cause"]
)
def test_own_lines_and_fatal_ones_pass(line: str) -> None:
    assert not NATIVE_LOG_LINE.match(line.encode())


WRITER = """
    import os, sys
    from aezoo.cli import exit_without_teardown, filter_native_logs
    filter_native_logs()
    for own, native in zip({own!r}, {native!r}):
        os.write(2, (native + "\\n").encode())  # as C++ code writes: straight to fd 2
        print(own, file=sys.stderr)
    {ending}
"""


@pytest.mark.parametrize(
    "ending, code",
    [
        ("exit_without_teardown()", 0),  # a stage's success: os._exit, no atexit
        ("raise SystemExit(1)", 1),  # a user's error
        ("raise RuntimeError('boom')", 1),  # a crash: its traceback must get through
    ],
)
def test_filter_drops_native_lines_and_keeps_the_rest_in_order(ending: str, code: int) -> None:
    done = run_python(WRITER.format(own=OWN_LINES, native=NATIVE_LINES[:3], ending=ending))
    assert done.returncode == code, done.stderr
    lines = done.stderr.splitlines()
    assert lines[:3] == OWN_LINES
    assert not any(NATIVE_LOG_LINE.match(line.encode()) for line in lines)
    if "boom" in ending:
        assert lines[-1] == "RuntimeError: boom"


@pytest.mark.parametrize("how", [["--tensorflow-logs"], []])
def test_a_flag_or_the_environment_brings_the_native_lines_back(how: list[str]) -> None:
    code = """
        import os, sys
        from aezoo.cli import run_stage, stage_parser
        args = stage_parser(None).parse_args(sys.argv[1:])
        def work(params):
            os.write(2, b"I0000 00:00:1796293167.023002    4424 port.cc:153] native\\n")
        run_stage(args.params, work, tensorflow_logs=args.tensorflow_logs)
    """
    env = {} if how else {"AEZOO_TENSORFLOW_LOGS": "1"}
    done = run_python(code, *how, env=env)
    assert done.returncode == 0, done.stderr
    assert "port.cc:153] native" in done.stderr
    quiet = run_python(code, env={"AEZOO_TENSORFLOW_LOGS": "0"})
    assert quiet.returncode == 0, quiet.stderr
    assert "native" not in quiet.stderr and "done in" in quiet.stderr


PROBE = """
    import runpy, sys
    sys.argv = sys.argv[1:]
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    except SystemExit as exit:
        code = exit.code
    else:
        code = 0
    heavy = sorted({{"tensorflow", "keras", "mlflow", "scipy", "sklearn"}} & set(sys.modules))
    print("HEAVY", ",".join(heavy), "CODE", code)
"""


def probe(script: str, *args: str) -> tuple[list[str], object, str]:
    """Run a pipeline script in-process and report the heavy libraries it imported."""
    done = run_python(PROBE.format(), f"pipeline/{script}", *args)
    last = done.stdout.strip().splitlines()[-1].split(" ")
    heavy = [name for name in last[1].split(",") if name]
    return heavy, last[3], done.stderr


def test_every_stage_script_is_checked() -> None:
    assert {"train.py", "denoise_classical.py", "compare.py"} <= set(STAGE_SCRIPTS)


@pytest.mark.parametrize("script", STAGE_SCRIPTS)
def test_help_answers_without_importing_tensorflow(script: str) -> None:
    heavy, code, stderr = probe(script, "--help")
    assert code == "0", stderr
    assert heavy == [], f"{script} --help imported {heavy}"


@pytest.mark.parametrize("script", PER_VARIANT_STAGES)
def test_an_unknown_variant_is_refused_before_tensorflow_is_imported(script: str) -> None:
    heavy, code, stderr = probe(script, "nosuchvariant")
    assert code == "1", stderr
    assert "variants.nosuchvariant: no such variant" in stderr
    assert heavy == [], f"{script} imported {heavy} before refusing the variant"
