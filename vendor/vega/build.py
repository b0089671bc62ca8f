"""Rebuild the offline page template for ``dvc plots show`` / ``dvc plots diff`` from npm.

DVC's own page loads Vega, Vega-Lite and Vega-Embed from a CDN, so its plots are blank
without a network. ``.dvc/config`` points ``plots.html_template`` at ``plots.html`` here
instead: DVC's page with the three libraries' browser builds inlined, exactly as the npm
registry ships them, so the page works wherever DVC writes it (``dvc_plots/``, ``-o DIR``)
and from ``file://``. Run this (it needs ``npm`` and the registry) to change the versions:

    python vendor/vega/build.py

It writes ``plots.html``, ``manifest.json`` (versions, tarball integrity, SHA-256 of each
inlined build), the libraries' licences and ``THIRD_PARTY_LICENSES.txt``. The tests check
``plots.html`` against ``manifest.json`` without a network.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REGISTRY = "https://registry.npmjs.org"
# package -> (exact version, browser build inside the npm tarball). The 5.x lines of Vega and
# Vega-Lite: the specs DVC 3 writes (its templates and ours) say Vega-Lite v5.
PACKAGES = {
    "vega": ("5.33.1", "build/vega.min.js"),
    "vega-lite": ("5.23.0", "build/vega-lite.min.js"),
    "vega-embed": ("6.29.0", "build/vega-embed.min.js"),
}
# The vega tarball carries no licence file; vega-view, a package of the same repository
# (vega/vega) and part of vega.min.js, carries the repository's BSD-3-Clause text.
LICENCE_FALLBACK = {"vega": "vega-view"}
# DVC fills {refresh_tag} and {plot_divs}; there is no {scripts}, so DVC's CDN tags stay out.
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
{{refresh_tag}}
<title>DVC plots</title>
<!--
{notice}
-->
{scripts}
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }}
table {{ border-spacing: 15px; }}
</style>
</head>
<body>
{{plot_divs}}
</body>
</html>
"""
LICENCE_FILES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE", "license", "COPYING")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def licence_text(package_dir: Path) -> str | None:
    for name in LICENCE_FILES:
        if (package_dir / name).is_file():
            return (package_dir / name).read_text(encoding="utf-8").strip()
    return None


def install(work: Path) -> dict[str, dict]:
    """``npm install`` the exact versions into ``work``; npm checks every tarball against the
    registry's integrity. Returns package-lock.json's packages."""
    (work / "package.json").write_text('{"private": true}\n')
    specs = [f"{name}@{version}" for name, (version, _) in PACKAGES.items()]
    subprocess.run(
        ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--save-exact", *specs],
        cwd=work,
        check=True,
    )
    return json.loads((work / "package-lock.json").read_text())["packages"]


def script_tag(name: str, version: str, code: str) -> str:
    """A script element holding ``code`` byte for byte (it must not close the element)."""
    if "</script" in code.lower() or any(
        marker in code for marker in ("{plot_divs}", "{refresh_tag}", "{scripts}")
    ):
        raise ValueError(f"{name}@{version}: the build cannot be inlined into DVC's template")
    return f'<script data-package="{name}@{version}">\n{code}\n</script>'


def build(work: Path) -> None:
    lock = install(work)
    modules = work / "node_modules"
    manifest, scripts, notices = {}, [], []
    for name, (version, build_file) in PACKAGES.items():
        entry = lock[f"node_modules/{name}"]
        if entry["version"] != version:
            raise RuntimeError(f"npm installed {name}@{entry['version']}, not {version}")
        code = (modules / name / build_file).read_bytes()
        licence = licence_text(modules / name) or licence_text(
            modules / LICENCE_FALLBACK.get(name, name)
        )
        if licence is None or "--" in licence:
            raise RuntimeError(f"{name}: no licence text that fits in an HTML comment")
        (HERE / f"LICENSE-{name}").write_text(licence + "\n", encoding="utf-8")
        manifest[name] = {
            "version": version,
            "tarball": f"{REGISTRY}/{name}/-/{name}-{version}.tgz",
            "integrity": entry["integrity"],
            "license": entry["license"],
            "file": build_file,
            "sha256": sha256(code),
            "bytes": len(code),
        }
        scripts.append(script_tag(name, version, code.decode("utf-8")))
        notices.append(f"{name} {version} ({entry['license']}):\n{licence}")
    header = (
        "Vega, Vega-Lite and Vega-Embed from the npm registry, inlined so that the page "
        "works offline\n(aezoo: vendor/vega/build.py; their bundled dependencies' licences: "
        "vendor/vega/THIRD_PARTY_LICENSES.txt)."
    )
    page = PAGE.format(notice="\n\n".join([header, *notices]), scripts="\n".join(scripts))
    (HERE / "plots.html").write_text(page, encoding="utf-8")
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")

    third_party = []
    for key, entry in sorted(lock.items()):
        name = key.removeprefix("node_modules/")
        # Native binaries (optional) and type declarations never reach a browser build.
        if key == name or entry.get("dev") or entry.get("optional") or "@types/" in name:
            continue
        text = licence_text(modules / name) or "(no licence file in the npm package)"
        third_party.append(f"{name} {entry['version']} ({entry.get('license')})\n\n{text}\n")
    (HERE / "THIRD_PARTY_LICENSES.txt").write_text(
        "Every package in the npm dependency tree of "
        + ", ".join(f"{name}@{version}" for name, (version, _) in PACKAGES.items())
        + " (a superset of what their browser builds bundle: native binaries and type "
        "declarations left out), with its licence.\n\n"
        + ("\n" + "-" * 78 + "\n\n").join(third_party),
        encoding="utf-8",
    )


def main() -> None:
    if shutil.which("npm") is None:
        raise SystemExit("build.py needs npm (and the npm registry)")
    with tempfile.TemporaryDirectory() as work:
        build(Path(work))
    print(f"wrote {HERE / 'plots.html'} ({(HERE / 'plots.html').stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
