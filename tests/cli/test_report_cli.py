import base64
import re

from click.testing import CliRunner

from nnprobe.cli import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _images(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)]


def test_report_of_a_training_run(tmp_path):
    run = tmp_path / "run"
    assert (
        invoke("train", "--data", "digits", "--width", "16", "--epochs", "3", "--no-progress", "--out", run).exit_code
        == 0
    )
    result = invoke("report", run)
    assert result.exit_code == 0, result.output
    html = (run / "overview.html").read_text()
    assert "Training curves (metrics.jsonl)" in html and "Configuration (config.json)" in html
    images = _images(html)
    assert images and all(img.startswith(b"\x89PNG") for img in images)  # the curves, embedded
    md = (run / "overview.md").read_text()
    assert "test_accuracy" in md and "overview_figures/curves_0.png" in md
    assert "src='overview_figures" not in html  # self-contained: no links to files


def test_report_of_a_sweep(tmp_path):
    out = tmp_path / "sweep"
    result = invoke(
        "sweep",
        "run",
        "--probe",
        "selftest",
        "--grid",
        "x=1,2,4,8",
        "--grid",
        "y=0,100",
        "--seeds",
        "2",
        "--out",
        out,
        "--workers",
        "1",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    report_dir = tmp_path / "elsewhere"
    result = invoke("report", out, "--out", report_dir)
    assert result.exit_code == 0, result.output
    html = (report_dir / "overview.html").read_text()
    assert "Sweep" in html and "16 points" in html and "<b>16 done</b>" in html
    assert "checksum_ci" in html and len(_images(html)) == 1
    # mean over the two seeds: checksum = x + y + seed -> x + y + 0.5; 95% t half-width t(0.975, 1) * 0.5 = 6.3531
    assert "<td>8</td><td>100</td><td>2</td><td>108.5000</td><td>6.3531</td>" in html


def test_report_of_an_empty_directory_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code != 0 and "holds no nnprobe output" in result.output
