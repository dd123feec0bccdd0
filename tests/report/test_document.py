import matplotlib.pyplot as plt

from nnprobe.report.document import COLUMN_LABELS, Report, column_label
from nnprobe.report.plotting import savefig


def test_report_markdown_and_self_contained_html(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    png = savefig(fig, tmp_path / "figs" / "line.png")
    report = Report("Probe")
    report.heading("Results")
    report.verdict("holds: cosine 0.999 (>= 0.99)", True, note="Claim: the head points at the SVM.")
    report.text("The **cosine** is `high`.")
    report.table([{"run": "a", "cosine_to_svm": 0.99912, "n": 3}, {"run": "b", "cosine_to_svm": float("nan")}])
    report.figure(png, "a line")
    md, page = report.write(tmp_path)
    text = md.read_text()
    # headers in words (the data keep their keys); unknown keys are shown as they are
    assert "| run | cosine to SVM | n |" in text and "0.9991" in text and "![a line](figs/line.png)" in text
    assert text.index("**Finding** — holds: cosine 0.999 (>= 0.99).") < text.index("| run |")
    html = page.read_text()
    assert "data:image/png;base64," in html and "<b>cosine</b>" in html and "<td>nan</td>" in html
    assert "<th>cosine to SVM</th>" in html and "<div class='verdict holds'>" in html and "&gt;= 0.99" in html


def test_column_labels_name_units_and_can_be_overridden():
    assert column_label("nn_offset_from_svm") == COLUMN_LABELS["nn_offset_from_svm"]
    assert "in SVM margins" in column_label("nn_offset_from_midpoint")
    assert column_label("gradient_seconds").endswith("(s)")
    assert column_label("redundancy_ratio_train_ci") == "redundancy ratio, train, ± 95% t over seeds"
    assert column_label("epoch", {"epoch": "base snapshot (epoch)"}) == "base snapshot (epoch)"
    assert column_label("checksum_std") == "checksum_std"
