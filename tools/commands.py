"""Running DVC and git from the tools: stdout back, a failure as one readable error."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from aezoo.errors import PipelineError


def environment() -> dict[str, str]:
    """The caller's environment with this interpreter's directory first on PATH.

    Stage commands say ``python``; run from ``make`` without an activated virtualenv, that
    must still be the interpreter that has aezoo installed.
    """
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run_command(args: list[str], root: Path, *, stream: bool = False) -> str:
    """Run ``args`` in ``root`` and return its stdout; a failure raises PipelineError.

    With ``stream`` the output goes straight to the terminal (long runs show progress).
    """
    captured = None if stream else subprocess.PIPE
    result = subprocess.run(
        args, cwd=root, env=environment(), text=True, stdout=captured, stderr=captured
    )
    if result.returncode != 0:
        detail = "" if stream else (result.stderr or result.stdout).strip()[-2000:]
        command = " ".join(args[2:] if args[1:3] == ["-m", "dvc"] else args)
        message = f"`{command}` failed (exit {result.returncode})"
        raise PipelineError(f"{message}:\n{detail}" if detail else message)
    return result.stdout or ""


def dvc_command(*args: str) -> list[str]:
    """A DVC command line with this interpreter (``python -m dvc``), so no PATH is assumed."""
    return [sys.executable, "-m", "dvc", *args]


def dvc(root: Path, *args: str, stream: bool = False) -> str:
    """Run a DVC command in ``root`` and return its stdout."""
    return run_command(dvc_command(*args), root, stream=stream)


def git(root: Path, *args: str) -> str:
    """Run a git command in ``root`` and return its stdout, stripped."""
    return run_command(["git", *args], root).strip()


def git_ignored(root: Path, paths: Iterable[str]) -> set[str]:
    """Those of ``paths`` that git ignores: DVC-cached data, never committed to git."""
    paths = list(paths)
    if not paths:
        return set()
    result = subprocess.run(
        ["git", "check-ignore", "--stdin"],
        cwd=root,
        input="\n".join(paths),
        capture_output=True,
        text=True,
    )
    return set(result.stdout.splitlines())
