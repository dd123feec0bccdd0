import matplotlib.pyplot as plt

from nnprobe.report.document import Report
from nnprobe.report.plotting import savefig


def test_report_markdown_and_self_contained_html(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    png = savefig(fig, tmp_path / "figs" / "line.png")
    report = Report("Probe")
    report.heading("Results")
    report.text("The **cosine** is `high`.")
    report.table([{"run": "a", "cosine_to_svm": 0.99912, "n": 3}, {"run": "b", "cosine_to_svm": float("nan")}])
    report.figure(png, "a line")
    md, page = report.write(tmp_path)
    text = md.read_text()
    assert "| run | cosine_to_svm | n |" in text and "0.9991" in text and "![a line](figs/line.png)" in text
    html = page.read_text()
    assert "data:image/png;base64," in html and "<b>cosine</b>" in html and "<td>nan</td>" in html
