"""The benchmark (benchmarks/): its pure parts exactly, and one tiny real run end to end."""

import json

import keras
import numpy as np
import pytest
from conftest import ROOT

from aezoo.config import parse_params
from benchmarks.arms import AezooArm, EpochClock, PlainFitArm, bench_data
from benchmarks.flops import forward_flops_per_sample, training_flops_per_sample
from benchmarks.machine import cpu_facts
from benchmarks.overheads import library_import_seconds, stage_scripts
from benchmarks.report import HAND_WRITTEN, render_markdown, write_report
from benchmarks.run import run_benchmark
from benchmarks.settings import BenchmarkError, Setting, parse_settings

CPUINFO = """processor : 0
model name : Test CPU
cpu MHz : 2000.000
flags : fpu sse avx avx2 fma
processor : 1
model name : Test CPU
cpu MHz : 2500.000
flags : fpu sse avx avx2 fma
"""


def test_cpu_peak_is_cores_clock_lanes_fma_and_units():
    facts = cpu_facts(CPUINFO, cores=2)
    assert facts["model"] == "Test CPU" and facts["fp32_lanes"] == 8 and facts["fma"]
    assert facts["peak_gflops"] == 2 * 2.5 * 8 * 2 * 2
    no_avx = cpu_facts(CPUINFO.replace("avx2 fma", ""), cores=1)
    assert no_avx["peak_gflops"] == 1 * 2.5 * 4 * 1 * 2


def test_flops_of_a_tiny_model_match_a_hand_count():
    images = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same")(images)  # 8x8 outputs x 3x3x1 x 4
    x = keras.layers.MaxPooling2D(2)(x)  # not counted
    inner = keras.Model(images, x)  # nested models are walked
    outer_in = keras.Input((8, 8, 1))
    y = inner(outer_in)
    y = keras.layers.Conv2DTranspose(2, 3, strides=2, padding="same")(y)  # 4x4 in x 3x3x4 x 2
    y = keras.layers.Flatten()(y)
    y = keras.layers.Dense(5)(y)  # 8*8*2 -> 5
    model = keras.Model(outer_in, y)
    by_hand = 2 * (64 * 9 * 1 * 4 + 16 * 9 * 4 * 2 + 128 * 5)
    assert forward_flops_per_sample(model) == by_hand
    assert training_flops_per_sample(model) == 3 * by_hand


def test_settings_are_one_per_jit_value_and_bad_values_name_the_flag():
    assert parse_settings("false,true") == [Setting(False), Setting(True)]
    assert parse_settings("on") == [Setting(True)]
    with pytest.raises(BenchmarkError, match="--jit-compile"):
        parse_settings("false,maybe")


def test_stage_scripts_are_read_from_dvc_yaml():
    scripts = stage_scripts(ROOT / "dvc.yaml")
    assert {s.name for s in scripts} >= {"fetch.py", "prepare.py", "train.py", "compare.py"}
    assert all(script.parent.name == "pipeline" for script in scripts)


def _arm(arm, samples_per_second, val_loss, **extra):
    return {
        "arm": arm,
        "setting": "jit=off",
        "train_seconds": [1.0, 1.5],
        "epoch_seconds": [1.5],
        "predict_seconds": [0.1],
        "peak_rss_mib": 900.0,
        "val_loss": val_loss,
        "samples_per_second": samples_per_second,
        "predict_samples_per_second": 10_000.0,
        "gflops_per_second": 2.0,
        **extra,
    }


def test_report_is_written_as_json_and_a_markdown_table(tmp_path):
    report = {
        "machine": {
            "cpu": cpu_facts(CPUINFO, cores=2),
            "gpu": None,
            "python": "3.11",
            "tensorflow": "2.21",
            "keras": "3.15",
            "date": "2026-01-01T00:00:00+00:00",
        },
        "settings": {
            "epochs_timed": 3,
            "train_samples": 20_000,
            "aezoo_settings": ["spe=1 jit=off"],
            "quality_tolerance": 0.02,
            "flops": "by hand",
        },
        "variants": [
            {
                "variant": "dense16",
                "train_samples": 3000,
                "arms": [
                    _arm(
                        "aezoo",
                        3000.0,
                        0.0300,
                        ratio=1.5,
                        quality_ok=True,
                        val_loss_change=0.03 / 0.0301 - 1,
                    ),
                    _arm("model.fit", 2000.0, 0.0290),
                    _arm("model.fit", 2050.0, 0.0301),
                ],
            }
        ],
        "overheads": {
            "entry_point_seconds": {"train.py": 0.4},
            "library_import_seconds": {"aezoo.training": 6.2},
            "dvc_repro": "skipped",
        },
    }
    write_report(report, tmp_path)
    assert json.loads((tmp_path / "benchmarks.json").read_text()) == report
    markdown = (tmp_path / "benchmarks.md").read_text()
    assert markdown == render_markdown(report)
    assert "| dense16 | aezoo | jit=off | 3,000 | 2,000-3,000 |" in markdown
    assert "1.50x | ok (-0.33%) |" in markdown and "Test CPU, 2 cores" in markdown
    assert "`python pipeline/train.py --help` | 0.40 |" in markdown
    assert "`import aezoo.training` (in `heavy_imports()`): train (TensorFlow, Keras) | 6.20 |" in (
        markdown
    )
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically: no leftovers

    history = f"{HAND_WRITTEN}\n\n## How the trainer is fast\n\nBy hand.\n"
    (tmp_path / "benchmarks.md").write_text(markdown + "\n" + history)
    report["variants"][0]["arms"][0]["train_samples_per_second"] = 4000.0
    write_report(report, tmp_path)
    rewritten = (tmp_path / "benchmarks.md").read_text()
    assert rewritten.startswith(render_markdown(report)) and rewritten.endswith(history)
    assert rewritten.count(HAND_WRITTEN) == 1


@pytest.mark.integration
def test_a_tiny_benchmark_measures_both_arms(raw_params, prepared_small, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the entry points are timed from the repository
    params = parse_params(raw_params)
    report = run_benchmark(
        params,
        ["dense16"],
        [Setting(False)],
        prepared_small,
        tmp_path,
        epochs=1,
        train_samples=512,
        time_dvc=False,
        time_imports=False,  # library_import_seconds has its own, cheaper test
    )
    (variant,) = report["variants"]
    aezoo, plain, same_order = variant["arms"]
    assert (plain["setting"], same_order["setting"]) == ("b: shuffled", "c: aezoo's order")
    assert "ratio" not in plain and "quality_ok" not in same_order
    assert variant["train_samples"] == 512 and variant["steps_per_epoch"] == 2
    assert (variant["architecture"], variant["objective"]) == ("dense", "autoencoder")
    assert "family" not in variant
    assert aezoo["samples_per_second"] > 0 and plain["samples_per_second"] > 0
    assert aezoo["ratio"] == pytest.approx(
        aezoo["samples_per_second"] / plain["samples_per_second"]
    )
    assert aezoo["val_loss_change"] == pytest.approx(aezoo["val_loss"] / same_order["val_loss"] - 1)
    assert variant["train_flops_per_sample"] == 3 * 2 * 2 * 784 * 16
    assert aezoo["peak_rss_mib"] > 100
    assert "train.py" in report["overheads"]["entry_point_seconds"]
    assert "| dense16 | aezoo |" in (tmp_path / "benchmarks.md").read_text()


def test_library_imports_are_timed_in_a_fresh_interpreter():
    timings = library_import_seconds({"aezoo.io": "a light module"}, repeats=1)
    assert set(timings) == {"aezoo.io"} and 0 < timings["aezoo.io"] < 30
    with pytest.raises(BenchmarkError, match=r"import aezoo\.no_such_module failed"):
        library_import_seconds({"aezoo.no_such_module": ""}, repeats=1)


def test_dvc_parses_yaml_with_the_c_parser():
    """DVC reads dvc.lock with ruamel.yaml's safe loader on every stage; without the C
    parser (ruamel.yaml.clib, a dependency) that loader is pure Python and ~4x slower."""
    from ruamel.yaml import YAML

    assert YAML(typ="safe").Parser.__name__ == "CParser"


def _dense16_arms(raw_params, prepared, samples: int):
    """dense16's arms a (aezoo), b (shuffled fit) and c (fit in a's order), same weights."""
    from aezoo.models import build

    params = parse_params(raw_params)
    spec = params.variant("dense16")
    clean, inputs = bench_data(params, "dense16", prepared, samples)
    weights = build("dense16", spec).autoencoder.get_weights()
    arms = (
        AezooArm("dense16", spec, params, Setting(False), clean, inputs, weights),
        PlainFitArm("dense16", spec, params, clean, inputs, weights),
        PlainFitArm("dense16", spec, params, clean, inputs, weights, same_order=True),
    )
    return params, clean, arms


@pytest.mark.integration
def test_the_plain_arm_uses_keras_adam_and_aezoo_its_fused_adam(raw_params, prepared_small):
    from aezoo.models import FusedAdam

    _, _, (aezoo, plain, _) = _dense16_arms(raw_params, prepared_small, 256)
    assert isinstance(aezoo.trainer.optimizer, FusedAdam)
    assert type(plain.model.optimizer) is keras.optimizers.Adam
    for _ in range(2):
        aezoo.epoch(EpochClock())
    assert aezoo.epochs_run == 2  # each benchmark epoch is numbered on, so it reshuffles
    assert int(aezoo.trainer.optimizer.iterations) == 2 * aezoo.trainer.steps_per_epoch


@pytest.mark.integration
def test_the_quality_reference_fits_on_the_trainers_batches_in_its_order(
    raw_params, prepared_small
):
    """c trains on a's batches: after two epochs their validation losses agree to round-off
    (Keras's Adam against the fused one), while b, shuffled its own way, ends elsewhere."""
    from aezoo.training import epoch_order

    raw_params["variants"]["dense16"]["batch_size"] = 32  # 32 steps an epoch: order matters
    params, clean, (aezoo, shuffled, same) = _dense16_arms(raw_params, prepared_small, 1024)
    losses = [[arm.epoch(EpochClock()) for _ in range(2)] for arm in (aezoo, shuffled, same)]

    order = epoch_order(1024, params.training.seed, 1).numpy()
    np.testing.assert_array_equal(same.x[..., 0], clean["train"].x[order] / np.float32(255))
    assert same.x is same.y  # a plain autoencoder: one float32 copy, as in fit(x_train, x_train)
    np.testing.assert_allclose(losses[0], losses[2], rtol=1e-4)
    assert abs(losses[1][-1] / losses[0][-1] - 1) > 1e-3  # 6e-3: the order shows
