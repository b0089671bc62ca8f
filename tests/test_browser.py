"""Pages opened in headless Chromium with the network blocked: what ``dvc plots show`` and
``dvc plots diff`` write (through the project's offline template, ``.dvc/config``) draws
every chart, and the report page (``reports/index.html``) loads every figure it links.

Every host resolves to nothing, and Chromium's network log records what the page asked
for: a page that needs anything beyond ``file://`` fails, not just renders blank.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from configobj import ConfigObj
from conftest import ROOT
from dvc_render.html import PAGE_HTML
from PIL import Image
from test_reporting import REPORTED, write_zoo, zoo_params

from aezoo import reporting
from aezoo.config import load_params
from aezoo.stages.compare import compare

# Debian's Chromium (.ci/run installs it), or the Chrome that GitHub's Ubuntu runners carry.
BROWSERS = ("chromium", "google-chrome", "google-chrome-stable")
CHROMIUM = Path(next(filter(None, map(shutil.which, BROWSERS)), "/usr/bin/chromium"))
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.is_file(),
        reason=f"no browser: none of {', '.join(BROWSERS)} (apt-get install chromium)",
    ),
]
PAGE_LIMIT = 1_000_000  # bytes: reports/index.html links its figures, so it stays small
VOID_ELEMENTS = {"meta", "img", "br", "hr", "link", "input", "source", "wbr", "area", "col"}
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


# ------------------------------------------------------------------- the browser


@dataclass(frozen=True)
class Visit:
    dom: str  # the document after its scripts ran
    remote: list[str]  # what the page asked for beyond file:// (blocked, but asked)


def page_requests(net_log: Path) -> list[str]:
    """The URLs that a page (not the browser itself) requested, from Chromium's network log.
    Chromium's own background requests carry the initiator "not an origin"; a page's carry
    its origin ("null" for file://)."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    requests = [
        event["params"] for event in log["events"] if event["type"] == start and "params" in event
    ]
    return [
        request["url"]
        for request in requests
        if "url" in request and request.get("initiator") != "not an origin"
    ]


def visit(page: Path, work: Path, *extra: str) -> Visit:
    """Open ``page`` in headless Chromium with no network; the DOM once its scripts ran."""
    work.mkdir(parents=True, exist_ok=True)
    profile, net_log = work / "profile", work / "net-log.json"
    shutil.rmtree(profile, ignore_errors=True)
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        f"--log-net-log={net_log}",
        "--virtual-time-budget=10000",
        *extra,
        page.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    remote = [url for url in page_requests(net_log) if not url.startswith(LOCAL_SCHEMES)]
    return Visit(dom=result.stdout, remote=remote)


class Drawn(HTMLParser):
    """Which elements (by id) of a serialized DOM hold a <canvas> or an <svg>."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[tuple[str, str | None]] = []
        self.drawn: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("canvas", "svg"):
            self.drawn.update(element for _, element in self.open if element)
        if tag not in VOID_ELEMENTS:
            self.open.append((tag, dict(attrs).get("id")))

    def handle_endtag(self, tag: str) -> None:
        while self.open and self.open.pop()[0] != tag:
            pass


def drawn_ids(dom: str) -> set[str]:
    parser = Drawn()
    parser.feed(dom)
    parser.close()
    return parser.drawn


# ------------------------------------------------------------- dvc plots pages


def run(command: list[str], cwd: Path) -> str:
    environment = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "aezoo test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "aezoo test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
    }
    result = subprocess.run(
        command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result.stdout


def dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


def history(epochs: int, offset: float = 0.0) -> str:
    rows = [
        f"{epoch},{0.1 / epoch + offset:.4f},{0.12 / epoch + offset:.4f}"
        for epoch in range(1, epochs + 1)
    ]
    return "epoch,loss,val_loss\n" + "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def plots_repo(tmp_path_factory) -> Path:
    """A throwaway git + DVC repository with the project's ``.dvc/config``, its HTML template
    (at the same place relative to ``.dvc/``) and its loss template: a loss history (our
    ``loss`` template) and a probe curve (DVC's ``linear``), committed, then changed."""
    repo = tmp_path_factory.mktemp("plots-repo")
    run(["git", "init", "-q", "-b", "main"], repo)
    run(dvc("init", "-q"), repo)
    shutil.copy2(ROOT / ".dvc" / "config", repo / ".dvc" / "config")
    template = ConfigObj(str(ROOT / ".dvc" / "config"))["plots"]["html_template"]
    assert not Path(template).is_absolute(), "the template must travel with the repository"
    copy = Path(os.path.normpath(repo / ".dvc" / template))
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(Path(os.path.normpath(ROOT / ".dvc" / template)), copy)
    (repo / ".dvc" / "plots").mkdir(exist_ok=True)
    shutil.copy2(ROOT / ".dvc" / "plots" / "loss.json", repo / ".dvc" / "plots" / "loss.json")
    (repo / "history.csv").write_text(history(6))
    (repo / "probe.csv").write_text("step,accuracy\n1,0.5\n2,0.7\n3,0.8\n")
    (repo / "dvc.yaml").write_text(
        "plots:\n"
        "  - history.csv:\n"
        "      template: loss\n"
        "      x: epoch\n"
        "      y: val_loss\n"
        "  - probe.csv:\n"
        "      template: linear\n"
        "      x: step\n"
        "      y: accuracy\n"
    )
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "plots"], repo)
    (repo / "history.csv").write_text(history(8, offset=0.01))  # a change for plots diff
    return repo


def plot_ids(page: str) -> list[str]:
    """The ids of the divs that DVC's Vega renderer fills (``vegaEmbed('#id', spec)``)."""
    return re.findall(r"vegaEmbed\('#([^']+)'", page)


@pytest.mark.parametrize(
    "command", [("plots", "show"), ("plots", "diff", "HEAD")], ids=["show", "diff"]
)
def test_dvc_plots_pages_draw_every_chart_with_no_network(plots_repo, tmp_path, command):
    out = tmp_path / "dvc_plots"
    run(dvc(*command, "-o", str(out)), plots_repo)
    page = (out / "index.html").read_text(encoding="utf-8")
    ids = plot_ids(page)
    assert len(ids) == 2, ids
    assert not re.search(r"<script[^>]+src=", page), "the template loads a script"

    seen = visit(out / "index.html", tmp_path / "browser", "--dump-dom")
    assert seen.remote == []
    assert set(ids) <= drawn_ids(seen.dom), f"charts not drawn: {set(ids) - drawn_ids(seen.dom)}"


def test_the_check_fails_dvc_s_own_page_that_loads_vega_from_a_cdn(plots_repo, tmp_path):
    """DVC's built-in page, for contrast: it asks a CDN for Vega and, offline, draws nothing."""
    default = tmp_path / "dvc-default.html"
    default.write_text(PAGE_HTML, encoding="utf-8")
    out = tmp_path / "dvc_plots"
    run(dvc("plots", "show", "--html-template", str(default), "-o", str(out)), plots_repo)

    seen = visit(out / "index.html", tmp_path / "browser", "--dump-dom")
    assert any(url.startswith("https://cdn.jsdelivr.net/npm/vega") for url in seen.remote)
    assert drawn_ids(seen.dom) == set()


# ------------------------------------------------------------------ the report page

COUNT_IMAGES = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  document.body.dataset.imagesTotal = images.length;
  document.body.dataset.imagesLoaded = images.filter(
    (image) => image.complete && image.naturalWidth > 0).length;
});
</script>
"""


def count_images(page: Path, work: Path) -> tuple[int, int, Visit]:
    """(images, images loaded) of ``page``, opened from a copy beside it (the same relative
    paths) that counts them once the page has loaded."""
    counted = page.with_name(f"{page.stem}.counted.html")
    text = page.read_text(encoding="utf-8")
    counted.write_text(text.replace("</body>", COUNT_IMAGES + "</body>"), encoding="utf-8")
    try:
        seen = visit(counted, work, "--dump-dom")
    finally:
        counted.unlink()
    total = re.search(r'data-images-total="(\d+)"', seen.dom)
    loaded = re.search(r'data-images-loaded="(\d+)"', seen.dom)
    assert total and loaded, "the page's load event never fired"
    return int(total.group(1)), int(loaded.group(1)), seen


def image_sources(page: Path) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page.read_text(encoding="utf-8"))


@pytest.fixture
def report(tmp_path, base_params) -> Path:
    """The compare stage's output on the hand-written zoo of tests/test_reporting.py."""
    root = tmp_path / "reports"
    root.mkdir()
    variants, corruptions, outputs = write_zoo(root)
    compare(zoo_params(base_params, REPORTED), variants, root, corruptions, outputs)
    return root


def test_report_page_loads_every_figure_it_links(report, tmp_path):
    page = report / "index.html"
    sources = image_sources(page)
    assert len(sources) == 3 + 4 * len(REPORTED)  # the charts, every variant's four figures
    assert all(not re.match(r"[a-z]+:|/", source) for source in sources), sources

    total, loaded, seen = count_images(page, tmp_path / "browser")
    assert total == loaded == len(sources)
    assert seen.remote == []

    screenshot = tmp_path / "page.png"
    visit(page, tmp_path / "browser", f"--screenshot={screenshot}", "--window-size=1280,1600")
    with Image.open(screenshot) as image:
        assert image.size == (1280, 1600)
        darkest, lightest = image.convert("L").getextrema()
        assert lightest - darkest > 100  # not a blank page

    # A figure that is not where the page says: the browser finds one image fewer.
    (report / "variants" / "conv" / "figures" / "loss.png").unlink()
    total, loaded, _ = count_images(page, tmp_path / "browser")
    assert (total, loaded) == (len(sources), len(sources) - 1)


def committed_report(destination: Path) -> Path:
    """``index.html`` as the compare stage would write it from the committed reports (their
    metrics.csv, corruption statistics and figures, copied to ``destination``), with no
    need for the gitignored per-image values."""
    reports = ROOT / "reports"
    if not (reports / "metrics.csv").is_file():
        pytest.skip(f"{reports / 'metrics.csv'} is absent: no committed results to show")
    for name in ("figures", "variants", "corruptions"):
        shutil.copytree(reports / name, destination / name)
    params = load_params(ROOT / "params.yaml")
    frame = pd.read_csv(reports / "metrics.csv")
    stats = {
        path.stem: json.loads(path.read_text())
        for path in sorted((destination / "corruptions").glob("*.json"))
    }
    kinds = {name: corruption.kind for name, corruption in params.corruptions.items()}
    corruptions = reporting.corruptions_frame(stats, kinds, frame)
    charts = [name for name in reporting.CHARTS if (destination / "figures" / name).is_file()]
    page = reporting.index_html(
        frame,
        corruptions,
        destination / "figures",
        charts,
        destination / "variants",
        page_dir=destination,
    )
    (destination / "index.html").write_text(page, encoding="utf-8")
    return destination / "index.html"


def test_the_committed_results_make_a_small_page_whose_figures_all_load(tmp_path):
    page = committed_report(tmp_path / "reports")
    assert page.stat().st_size < PAGE_LIMIT
    variants = pd.read_csv(ROOT / "reports" / "metrics.csv")["variant"]
    figures = [*(tmp_path / "reports" / "figures").iterdir()]
    for name in variants:
        figures += (tmp_path / "reports" / "variants" / name / "figures").iterdir()
    sources = image_sources(page)
    assert len(sources) == len(figures) > len(variants)

    total, loaded, seen = count_images(page, tmp_path / "browser")
    assert total == loaded == len(sources)
    assert seen.remote == []
