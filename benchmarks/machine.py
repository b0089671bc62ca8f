"""The machine the numbers are taken on: CPU peak, software versions, peak memory."""

from __future__ import annotations

import datetime
import math
import os
import platform
from pathlib import Path

FMA_UNITS_PER_CORE = 2  # two 256-bit FMA pipes per core: AMD Zen 2+, Intel Haswell+


def cpu_facts(cpuinfo: str | None = None, cores: int | None = None) -> dict:
    """CPU model, cores, clock and fp32 peak GFLOP/s from ``/proc/cpuinfo``.

    peak = cores x GHz x fp32 lanes (16 with avx512f, 8 with avx2, 4 otherwise)
    x 2 (a fused multiply-add is two FLOPs, when ``fma`` is present) x FMA units per core.
    """
    if cpuinfo is None:
        cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    fields: dict[str, str] = {}
    megahertz = []
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        fields.setdefault(key, value)
        if key == "cpu MHz":
            megahertz.append(float(value))
    flags = set(fields.get("flags", "").split())
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    fma = 2 if "fma" in flags else 1
    ghz = max(megahertz) / 1000 if megahertz else math.nan
    return {
        "model": fields.get("model name", platform.processor() or "unknown"),
        "cores": cores,
        "ghz": round(ghz, 3),
        "fp32_lanes": lanes,
        "fma": fma == 2,
        "fma_units_per_core": FMA_UNITS_PER_CORE,
        "peak_gflops": round(cores * ghz * lanes * fma * FMA_UNITS_PER_CORE, 1),
        "peak_formula": "cores x GHz x fp32 lanes x 2 (FMA) x FMA units per core",
    }


def machine_facts() -> dict:
    """The machine and software the numbers were taken on."""
    import keras  # TensorFlow: only once a benchmark runs
    import tensorflow as tf

    gpus = [
        tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
        for gpu in tf.config.list_physical_devices("GPU")
    ]
    return {
        "cpu": cpu_facts(),
        "gpu": gpus or None,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "TensorFlow's default"),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def peak_rss_reset() -> bool:
    """Reset this process's RSS high-water mark (Linux ``clear_refs``); False if impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float | None:
    """This process's RSS high-water mark (``VmHWM``) in MiB, or None off Linux."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None
