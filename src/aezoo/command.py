"""``aezoo``: the zoo's trained models on your own images, from the command line.

    aezoo list
    aezoo reconstruct conv_denoise my-digits/        # sheet.png, outputs.npy, results.json
    aezoo denoise conv_denoise 7.png --json           # noise added as in training, removed
    aezoo encode vae 3.jpg 5.jpg --format csv
    aezoo generate vae2d                              # prior samples and the 2-D manifold
    aezoo interpolate vae 1.png 7.png --steps 10

Arguments are checked before TensorFlow is imported. A problem with what you gave (a file,
a variant, a model) is one line on stderr naming it, exit status 2, and no output written.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from aezoo.app import (
    DEFAULT_OOD_QUANTILE,
    InputError,
    Picture,
    Variant,
    codes_csv,
    json_bytes,
    load_variant,
    npy_bytes,
    ood_threshold,
    png_bytes,
    read_digits,
    sheet,
    wrap,
    write_outputs,
)
from aezoo.cli import exit_without_teardown, filter_native_logs, native_logs_wanted
from aezoo.config import Params, load_params
from aezoo.errors import AezooError

USAGE_ERROR = 2


# ------------------------------------------------------------------------ arguments


def _quantile(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _positive(limit: int):
    def parse(text: str) -> int:
        value = int(text)
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"must be 1 to {limit}, got {text}")
        return value

    return parse


def parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per use of a trained model."""
    main = argparse.ArgumentParser(
        prog="aezoo",
        description="Apply the zoo's trained autoencoders to your own digit images.",
        epilog="Models come from the DVC outputs (models/<variant>: `make pull` or `make repro`)"
        " or, for reconstruct and denoise, from the MLflow registry (--model).",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--params", type=Path, default=Path("params.yaml"), help="params.yaml")
    common.add_argument("--models", type=Path, default=Path("models"), help="DVC's models/")
    common.add_argument(
        "--outputs",
        type=Path,
        default=Path("data/test_outputs"),
        help="the evaluate stage's outputs (the validation errors behind the OOD flag)",
    )
    common.add_argument("--json", action="store_true", help="print the results as JSON")
    with_out = argparse.ArgumentParser(add_help=False)
    with_out.add_argument(
        "--out", type=Path, help="output directory (default: aezoo-out/<command>-<variant>)"
    )
    with_out.add_argument(
        "--model",
        metavar="URI",
        help="an MLflow model instead of models/<variant>, e.g. models:/aezoo-conv@champion "
        "(the autoencoder alone: reconstruct and denoise only)",
    )
    images = argparse.ArgumentParser(add_help=False)
    images.add_argument(
        "--ink",
        choices=("auto", "dark", "light"),
        default="auto",
        help="dark ink on light paper, light on dark, or detect it from the border (auto)",
    )
    sub = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = sub.add_parser("list", parents=[common], help="the variants, test figures, models")
    listing.add_argument(
        "--reports", type=Path, default=Path("reports/variants"), help="the metrics.json files"
    )

    for name, text in (
        ("reconstruct", "each image through the autoencoder, as it is"),
        ("denoise", "a denoiser: its training corruption added to each image, then removed"),
    ):
        command = sub.add_parser(name, parents=[common, with_out, images], help=text)
        command.add_argument("variant")
        command.add_argument("images", nargs="+", type=Path, help="files or directories")
        command.add_argument(
            "--ood-quantile",
            type=_quantile,
            default=DEFAULT_OOD_QUANTILE,
            help="flag an image whose error is above this quantile of the validation "
            "images' errors (default 0.99)",
        )
        if name == "denoise":
            command.add_argument("--seed", type=int, default=0, help="the noise's seed")

    encode = sub.add_parser("encode", parents=[common, with_out, images], help="codes of images")
    encode.add_argument("variant")
    encode.add_argument("images", nargs="+", type=Path)
    encode.add_argument("--format", choices=("csv", "npy"), default="csv")

    generate = sub.add_parser(
        "generate", parents=[common, with_out], help="a VAE's prior samples (and 2-D manifold)"
    )
    generate.add_argument("variant")
    generate.add_argument("-n", "--count", type=_positive(10_000), default=64)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument(
        "--side", type=_positive(100), default=20, help="a 2-D code's manifold: side x side"
    )

    between = sub.add_parser(
        "interpolate", parents=[common, with_out, images], help="decoded codes between A and B"
    )
    between.add_argument("variant")
    between.add_argument("a", type=Path)
    between.add_argument("b", type=Path)
    between.add_argument("--steps", type=_positive(100), default=10)
    return main


# ------------------------------------------------------------------------ commands


def _error(message: str) -> NoReturn:
    print(f"aezoo: error: {message}", file=sys.stderr)
    raise SystemExit(USAGE_ERROR)


def _out_dir(args: argparse.Namespace) -> Path:
    return args.out or Path("aezoo-out") / f"{args.command}-{args.variant}"


def _check_variant(args: argparse.Namespace, params: Params, need: str | None = None) -> None:
    """The variant exists and suits the command: checked before any image or model loads."""
    try:
        spec = params.variant(args.variant)
    except AezooError as error:
        raise InputError(str(error)) from None
    kinds = {"variational": spec.variational, "denoising": spec.denoising}
    if need and not kinds[need]:
        which = [name for name, other in params.variants.items() if getattr(other, need)]
        raise InputError(
            f"{args.command} needs a {need} variant; {args.variant} is not "
            f"({need}: {', '.join(which) or 'none in params.yaml'})"
        )


def _variant(args: argparse.Namespace, params: Params) -> Variant:
    return load_variant(params, args.variant, args.models, args.model)


def _as_input(pictures: Sequence[Picture]) -> np.ndarray:
    return np.stack([picture.digit.image for picture in pictures])[..., None]


def _mse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    diff = a.reshape(len(a), -1).astype(np.float64) - b.reshape(len(b), -1)
    return np.mean(diff * diff, axis=1)


def reconstruct(args: argparse.Namespace, params: Params) -> dict[str, Any]:
    """Each image through the autoencoder; with ``denoise``, corrupted first as in training."""
    denoising = args.command == "denoise"
    _check_variant(args, params, "denoising" if denoising else None)
    pictures = read_digits(args.images, args.ink)
    variant = _variant(args, params)
    clean = _as_input(pictures)
    seen = clean
    if denoising:
        from aezoo.corruption import corrupt_batch

        noise = params.corruption(variant.spec.input)
        seen = corrupt_batch(clean, noise, np.array([args.seed, 0], dtype=np.int64)).numpy()
    outputs = variant.autoencoder(seen)
    errors = _mse(clean[..., 0], outputs)
    threshold = ood_threshold(args.outputs, variant.name, not denoising, args.ood_quantile)
    if threshold is not None and args.model:
        caveat = (
            f"; measured on models/{variant.name}, so it fits {args.model} only if that is the "
            "same model (a @champion is, once the track stage mirrored these outputs)"
        )
        threshold = dataclasses.replace(threshold, reference=threshold.reference + caveat)
    groups = [[c[..., 0], s[..., 0], o] for c, s, o in zip(clean, seen, outputs, strict=True)]
    if not denoising:
        groups = [[group[0], group[2]] for group in groups]
    results = [
        {
            "image": str(picture.path),
            "ink": "dark on light (inverted)" if picture.digit.dark_ink else "light on dark",
            "mse": float(error),
            "out_of_distribution": None if threshold is None else bool(error > threshold.mse),
        }
        for picture, error in zip(pictures, errors, strict=True)
    ]
    report = {
        "command": args.command,
        "variant": variant.name,
        "model": variant.origin,
        "error": "MSE of the output against the preprocessed image"
        + (" before the noise" if denoising else ""),
        "ood_threshold": None if threshold is None else threshold.as_json(),
        "images": results,
    }
    files = {
        "sheet.png": png_bytes(sheet(wrap(groups))),
        "inputs.npy": npy_bytes(seen[..., 0].astype(np.float32)),
        "outputs.npy": npy_bytes(outputs),
        "results.json": json_bytes(report),
    }
    report["files"] = [str(path) for path in write_outputs(_out_dir(args), files)]
    return report


def encode(args: argparse.Namespace, params: Params) -> dict[str, Any]:
    _check_variant(args, params)
    pictures = read_digits(args.images, args.ink)
    variant = _variant(args, params)
    codes = variant.need("encoder")(_as_input(pictures)).reshape(len(pictures), -1)
    paths = [picture.path for picture in pictures]
    payload = codes_csv(paths, codes) if args.format == "csv" else npy_bytes(codes)
    files = {f"codes.{args.format}": payload, "inputs.npy": npy_bytes(_as_input(pictures)[..., 0])}
    report = {
        "command": "encode",
        "variant": variant.name,
        "model": variant.origin,
        "code": "posterior mean" if variant.spec.variational else "encoder output",
        "images": [
            {"image": str(path), "code": [float(value) for value in row]}
            for path, row in zip(paths, codes, strict=True)
        ],
    }
    report["files"] = [str(path) for path in write_outputs(_out_dir(args), files)]
    return report


def generate(args: argparse.Namespace, params: Params) -> dict[str, Any]:
    _check_variant(args, params, "variational")
    variant = _variant(args, params)
    decode = variant.need("decoder")
    size = variant.spec.code_size
    prior = np.random.default_rng(args.seed).standard_normal((args.count, size))
    samples = decode(prior.astype(np.float32))
    columns = math.ceil(math.sqrt(args.count))
    rows = [list(samples[start : start + columns]) for start in range(0, args.count, columns)]
    files = {"samples.png": png_bytes(sheet(rows)), "samples.npy": npy_bytes(samples)}
    report: dict[str, Any] = {
        "command": "generate",
        "variant": variant.name,
        "model": variant.origin,
        "samples": args.count,
        "seed": args.seed,
    }
    if size == 2:
        from scipy.stats import norm

        # As keras-io's vae.py: Gaussian quantiles 5%..95%, z[1] from high (top) to low.
        grid = norm.ppf(np.linspace(0.05, 0.95, args.side))
        points = np.array([[x, y] for y in grid[::-1] for x in grid], dtype=np.float32)
        manifold = decode(points).reshape(args.side, args.side, 28, 28)
        files |= {
            "manifold.png": png_bytes(sheet(list(manifold))),
            "manifold.npy": npy_bytes(manifold),
        }
        report["manifold_side"] = args.side
    report["files"] = [str(path) for path in write_outputs(_out_dir(args), files)]
    return report


def interpolate(args: argparse.Namespace, params: Params) -> dict[str, Any]:
    _check_variant(args, params)
    pictures = read_digits([args.a, args.b], args.ink)
    if len(pictures) != 2:
        raise InputError(f"interpolate takes two image files, found {len(pictures)} images")
    variant = _variant(args, params)
    codes = variant.need("encoder")(_as_input(pictures))
    fractions = np.linspace(0.0, 1.0, args.steps).reshape(-1, *([1] * (codes.ndim - 1)))
    line = codes[0] + fractions * (codes[1] - codes[0])
    decoded = variant.need("decoder")(line.astype(np.float32))
    ends = [pictures[0].digit.image, *decoded, pictures[1].digit.image]
    files = {"interpolation.png": png_bytes(sheet([ends])), "interpolation.npy": npy_bytes(decoded)}
    report = {
        "command": "interpolate",
        "variant": variant.name,
        "model": variant.origin,
        "a": str(args.a),
        "b": str(args.b),
        "steps": args.steps,
    }
    report["files"] = [str(path) for path in write_outputs(_out_dir(args), files)]
    return report


def list_variants(args: argparse.Namespace, params: Params) -> dict[str, Any]:
    """The variants of params.yaml, their test figures and whether their model is here."""
    rows = []
    for name, spec in params.variants.items():
        metrics_path = args.reports / name / "metrics.json"
        figures: dict[str, float] = {}
        if metrics_path.is_file():
            measured = json.loads(metrics_path.read_text())
            figures = {
                "mse": measured["reconstruction"]["mse"],
                "psnr_db": measured["reconstruction"]["psnr_db"],
            }
            if "vae" in measured:
                figures["neg_elbo"] = measured["vae"]["neg_elbo"]
        model_dir = args.models / name
        here = (model_dir / "autoencoder.keras").is_file()
        rows.append(
            {
                "variant": name,
                "kind": ("VAE" if spec.variational else "autoencoder")
                + (f", denoising {spec.input}" if spec.denoising else ""),
                "code_size": spec.code_size,
                "test": figures,
                "model": f"{model_dir}" if here else f"not here ({model_dir}: make pull)",
                "registry": f"models:/aezoo-{name}@champion",
            }
        )
    return {"command": "list", "variants": rows}


def _print_list(report: dict[str, Any]) -> None:
    print(f"{'variant':<20} {'kind':<42} {'code':>5} {'test MSE':>9} {'PSNR':>7}  model")
    for row in report["variants"]:
        test = row["test"]
        mse = f"{test['mse']:.4f}" if test else "-"
        psnr = f"{test['psnr_db']:.2f}" if test else "-"
        print(
            f"{row['variant']:<20} {row['kind']:<42} {row['code_size']:>5} {mse:>9} {psnr:>7}"
            f"  {row['model']}"
        )


def _print_summary(report: dict[str, Any]) -> None:
    print(f"{report['command']} {report['variant']} with {report['model']}")
    threshold = report.get("ood_threshold")
    for image in report.get("images", []):
        line = f"  {image['image']}"
        if "mse" in image:
            flag = image["out_of_distribution"]
            line += f": MSE {image['mse']:.4f}" + (" OUT OF DISTRIBUTION" if flag else "")
        print(line)
    if threshold:
        print(
            f"OOD threshold: MSE {threshold['mse']:.4f}, the {threshold['quantile']:g} quantile "
            f"of {threshold['reference']}"
        )
    elif "ood_threshold" in report:
        print("no OOD flag: the evaluate stage's outputs are not here (make pull)")
    for path in report.get("files", []):
        print(f"wrote {path}")


COMMANDS = {
    "list": list_variants,
    "reconstruct": reconstruct,
    "denoise": reconstruct,
    "encode": encode,
    "generate": generate,
    "interpolate": interpolate,
}


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse ``argv``, run the command, print its results; return them. A problem with what
    the user gave exits with status 2 and one line on stderr."""
    args = parser().parse_args(argv)
    if not args.params.is_file():
        _error(f"{args.params}: no params file here (run aezoo in the aezoo clone, or --params)")
    try:
        report = COMMANDS[args.command](args, load_params(args.params))
    except AezooError as error:  # InputError and a bad params.yaml alike
        _error(str(error))
    if args.json:
        print(json.dumps(report, indent=2))
    elif args.command == "list":
        _print_list(report)
    else:
        _print_summary(report)
    return report


def main(argv: Sequence[str] | None = None) -> None:
    """The ``aezoo`` console command."""
    if not native_logs_wanted(False):
        filter_native_logs()  # TensorFlow's C++ lines (AEZOO_TENSORFLOW_LOGS=1 keeps them)
    try:
        run(argv)
    except BrokenPipeError:  # `aezoo list | head`: the reader has gone, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    exit_without_teardown()  # unloading TensorFlow would take another ~2 s
