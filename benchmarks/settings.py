"""What a benchmark run compares: aezoo trainer settings, and the quality tolerance."""

from __future__ import annotations

from dataclasses import dataclass

from aezoo.errors import AezooError

# a's val loss may exceed c's by 2%: on the same batches the two still differ by round-off,
# which Adam amplifies (it scales tiny gradients up to full steps); measured up to ~1% (vae).
QUALITY_TOLERANCE = 0.02


class BenchmarkError(AezooError, RuntimeError):
    """A benchmark setting or input is unusable; the message names it."""


@dataclass(frozen=True)
class Setting:
    """One configuration of aezoo's trainer under test."""

    jit_compile: bool

    @property
    def label(self) -> str:
        return f"jit={'on' if self.jit_compile else 'off'}"


def parse_settings(jit_compile: str) -> list[Setting]:
    """One setting per comma-separated jit value."""
    switches = {"true": True, "on": True, "1": True, "false": False, "off": False, "0": False}
    jits = []
    for value in jit_compile.split(","):
        if value.strip().lower() not in switches:
            raise BenchmarkError(f"--jit-compile: {value!r} is not one of true/false")
        jits.append(switches[value.strip().lower()])
    return [Setting(jit) for jit in jits]
