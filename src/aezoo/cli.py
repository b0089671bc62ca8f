"""Shared plumbing of the stage entry points in ``pipeline/``."""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import re
import resource
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from aezoo.config import Params, load_params
from aezoo.errors import AezooError

VariantStage = Callable[..., object]  # (params, name, data_dir, model_dir, report_dir, ...)

# TensorFlow's and XLA's C++ log lines at INFO, WARNING and ERROR (absl's format: severity,
# date, time, thread, file:line; before absl is initialised the time is seconds since the
# epoch), and absl's note that it is not initialised. TensorFlow 2.21 writes them to fd 2
# whatever TF_CPP_MIN_LOG_LEVEL says, so only a filter on the file descriptor removes them.
# FATAL lines (a crash's cause) always pass.
NATIVE_LOG_LINE = re.compile(
    rb"^(?:[IWE]\d{4} [\d:.]+\s+\d+ [\w.-]+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called)"
)
SHOW_NATIVE_LOGS = "AEZOO_TENSORFLOW_LOGS"  # set to 1: keep TensorFlow's C++ lines
_STDERR_RESTORERS: list[Callable[[], None]] = []  # filter_native_logs's undo, for os._exit


def stage_parser(description: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options every stage takes (``--params``,
    ``--tensorflow-logs``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--params", type=Path, default=Path("params.yaml"), help="params file (params.yaml)"
    )
    parser.add_argument(
        "--tensorflow-logs",
        action="store_true",
        help=f"keep TensorFlow's C++ log lines on stderr (or set {SHOW_NATIVE_LOGS}=1)",
    )
    return parser


def filter_native_logs() -> Callable[[], None]:
    """Drop TensorFlow's C++ log lines from this process's stderr (file descriptor 2, which
    native code writes to directly); every other line passes through unchanged.

    Returns the function that undoes it, flushing what is still in the pipe; it also runs at
    interpreter exit, so a traceback printed on the way out is not lost.
    """
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        with os.fdopen(read_end, "rb") as lines:
            for line in lines:
                if not NATIVE_LOG_LINE.match(line):
                    os.write(original, line)

    thread = threading.Thread(target=pump, name="native-log-filter", daemon=True)
    thread.start()
    restored = False

    def restore() -> None:
        nonlocal restored
        if restored:
            return
        restored = True
        sys.stderr.flush()
        os.dup2(original, 2)  # the pipe's last writer closes: the pump reads to the end
        thread.join(timeout=10)

    atexit.register(restore)
    _STDERR_RESTORERS.append(restore)
    return restore


def native_logs_wanted(flag: bool) -> bool:
    return flag or os.environ.get(SHOW_NATIVE_LOGS, "") not in ("", "0")


def run_stage(
    params_path: Path, work: Callable[[Params], None], *, tensorflow_logs: bool = False
) -> NoReturn:
    """Validate the params, then run ``work``; errors a user can fix exit 1 with their cause.

    TensorFlow's C++ log lines are filtered out of stderr unless ``tensorflow_logs`` (the
    ``--tensorflow-logs`` flag) or AEZOO_TENSORFLOW_LOGS=1. On success it prints the stage's
    wall time and peak memory (resident set) to stderr and ends the process at once
    (``exit_without_teardown``): call it only from an entry point.
    """
    started = time.monotonic()
    if not native_logs_wanted(tensorflow_logs):
        filter_native_logs()
    try:
        work(load_params(params_path))
    except AezooError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    print(
        f"done in {time.monotonic() - started:.1f}s, peak memory {peak_memory_mib():,.0f} MiB",
        file=sys.stderr,
    )
    exit_without_teardown()


def exit_without_teardown() -> NoReturn:
    """End a finished stage now, skipping the interpreter's teardown.

    Unloading TensorFlow, Keras and MLflow takes 1.5-2 s per process, and a pipeline run
    starts ~40 of them. By now every output is written (atomically) and closed, and the
    MLflow run ended, so flushing the standard streams and logging is all that is left.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    for restore in _STDERR_RESTORERS:  # os._exit skips atexit: flush the filter here
        restore()
    os._exit(0)


def peak_memory_mib() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_variant_stage(
    description: str | None,
    stage: VariantStage,
    argv: list[str] | None = None,
    *,
    test_outputs: bool = False,
) -> None:
    """Parse a per-variant stage's arguments and run ``stage`` on that variant.

    ``stage(params, name, data_dir, model_dir, report_dir)`` gets the variant's own model and
    report directories (``<models>/<name>``, ``<reports>/<name>``); with ``test_outputs``
    also ``test_outputs=<outputs>/<name>.npz``, the arrays evaluate writes and render draws.
    """
    parser = stage_parser(description)
    parser.add_argument("name", help="a key of variants: in params.yaml")
    parser.add_argument("--data", type=Path, default=Path("data/prepared"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--reports", type=Path, default=Path("reports/variants"))
    if test_outputs:
        parser.add_argument(
            "--outputs",
            type=Path,
            default=Path("data/test_outputs"),
            help="directory of <name>.npz: the model's outputs that the figures show",
        )
    args = parser.parse_args(argv)
    extra = {"test_outputs": args.outputs / f"{args.name}.npz"} if test_outputs else {}
    run_stage(
        args.params,
        lambda params: stage(
            params,
            args.name,
            args.data,
            args.models / args.name,
            args.reports / args.name,
            **extra,
        ),
        tensorflow_logs=args.tensorflow_logs,
    )
