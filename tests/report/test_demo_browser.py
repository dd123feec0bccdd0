"""The demo report in a real browser: headless Chromium (Debian's ``chromium``) renders the page and decodes
every embedded figure. Skipped when no Chromium is installed (CI installs it: ``.ci/run``)."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess

import pytest
from PIL import Image

from nnprobe.cli.demo import run_demo

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no headless Chromium (apt-get install chromium)")

# after load, the page writes into the DOM how many of its images the browser decoded
PROBE = (
    "<script>window.addEventListener('load', () => { const imgs = [...document.images]; "
    "document.body.setAttribute('data-images-loaded', "
    "imgs.filter(i => i.complete && i.naturalWidth > 0).length + '/' + imgs.length); });</script>"
)


def _chromium(tmp_path, *args) -> subprocess.CompletedProcess:
    cmd = [
        BROWSER,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def _loaded(tmp_path, html: str, name: str) -> tuple[int, int]:
    page = tmp_path / name
    page.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = _chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    found = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom)
    assert found, f"the page did not finish loading in Chromium: {dom[:300]!r}"
    return int(found.group(1)), int(found.group(2))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    run_demo(out, epochs=4, echo=lambda *a, **k: None)
    return out


def test_every_embedded_figure_is_a_valid_png(demo):
    html = (demo / "report.html").read_text(encoding="utf-8")
    sources = re.findall(r"<img src='([^']*)'", html)
    assert len(sources) == 5 and len(sources) == html.count("<img ")
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        image.verify()  # a decodable PNG, not truncated
        assert image.format == "PNG" and min(image.size) > 100


def test_chromium_renders_the_page_and_loads_every_image(demo, tmp_path):
    html = (demo / "report.html").read_text(encoding="utf-8")
    dom = _chromium(tmp_path, "--dump-dom", (demo / "report.html").as_uri()).stdout
    assert "<title>nnprobe demo: three probes on digits</title>" in dom
    assert "Finding</b>" in dom and "cosine to SVM</th>" in dom  # verdicts first, headers in words
    assert _loaded(tmp_path, html, "probe.html") == (5, 5)
    # the check can fail: one figure replaced by bytes that are no image, and Chromium loads one image fewer
    junk = base64.b64encode(b"not a png at all").decode()
    broken = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]*", f"data:image/png;base64,{junk}", html, count=1)
    assert _loaded(tmp_path, broken, "broken.html") == (4, 5)


def test_chromium_screenshot_is_not_blank(demo, tmp_path):
    shot = tmp_path / "shot.png"
    _chromium(tmp_path, "--window-size=1200,2400", f"--screenshot={shot}", (demo / "report.html").as_uri())
    image = Image.open(shot).convert("RGB")
    assert image.size == (1200, 2400)
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 200  # text, tables and figures, not one flat colour
    # the top of the page is the title: dark text on white
    darkest, lightest = image.crop((0, 0, 1200, 120)).convert("L").getextrema()
    assert darkest < 80 and lightest > 240
