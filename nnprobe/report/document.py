"""A report: Markdown for reading in a repo, and one self-contained HTML page (figures embedded)."""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nnprobe.io import write_text_atomic

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.5}
h1{border-bottom:2px solid #eee;padding-bottom:.3em}h2{margin-top:2em;border-bottom:1px solid #eee}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:right}
th{background:#f6f8fa}td:first-child,th:first-child{text-align:left}tr:nth-child(even){background:#fbfbfb}
figure{margin:1.5em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:.9em}
code{background:#f6f8fa;padding:.1em .3em;border-radius:3px}.meta{color:#777;font-size:.85em}
.verdict{border-left:5px solid #999;background:#f6f8fa;padding:.5em .9em;margin:1em 0}
.verdict.holds{border-color:#1a9850;background:#eef8f1}.verdict.fails{border-color:#d73027;background:#fcf0ee}
.verdict p{margin:.2em 0}.verdict .note{color:#555;font-size:.85em}
"""

# Table headers in words, with units; tables keep the data's keys (result.json, summaries) and show these.
COLUMN_LABELS = {
    # max-margin probe
    "experiment": "experiment",
    "mode": "SVM form",
    "head": "head",
    "cosine_to_svm": "cosine to SVM",
    "cosine_in_span": "cosine to SVM (in span)",
    "test_agreement": "test agreement NN vs SVM (fraction)",
    "nn_test_accuracy": "NN test accuracy",
    "nn_train_accuracy": "NN train accuracy",
    "svm_test_accuracy": "SVM test accuracy",
    "svm_train_error": "SVM train error (fraction)",
    "svm_margin": "SVM margin (feature units)",
    "nn_min_margin": "NN min. margin (feature units)",
    "nn_bias_scaled": "NN bias (SVM scale)",
    "svm_bias": "SVM bias",
    "nn_offset_from_svm": "NN offset from SVM (in SVM margins)",
    "nn_offset_from_midpoint": "NN offset from class-mean midpoint (in SVM margins)",
    "grid_disagreement": "NN vs SVM disagreement (fraction of plot)",
    "dead_feature_dims": "dead feature units",
    "cosine_per_class": "cosine to SVM per class",
    "nn_weight_norm": "NN head weight norm",
    "svm_weight_norm": "SVM weight norm",
    # activation codes
    "model": "model",
    "n_units": "ReLU units",
    "measure": "measure",
    "train": "train",
    "test": "test",
    "model_train_accuracy": "network train accuracy",
    "model_test_accuracy": "network test accuracy",
    "redundancy_ratio_train": "redundancy ratio, train",
    "redundancy_ratio_test": "redundancy ratio, test",
    "test_codes_seen_in_train": "test codes seen in training (fraction)",
    "kmeans_train_accuracy": "K-Means train accuracy",
    "kmeans_test_accuracy": "K-Means test accuracy",
    "knn_train_accuracy": "K-NN train accuracy (codes)",
    "knn_test_accuracy": "K-NN test accuracy (codes)",
    "logistic_train_accuracy": "logistic train accuracy (codes)",
    "logistic_test_accuracy": "logistic test accuracy (codes)",
    "width": "width (units per layer)",
    "depth": "hidden layers",
    "epochs": "training epochs",
    "samples_per_class": "training examples per class",
    "weight_decay": "weight decay",
    "dropout": "dropout probability",
    "label_noise": "label-noise fraction",
    "lr": "learning rate",
    # GradNet
    "epoch": "epoch",
    "base_test_accuracy": "base test accuracy",
    "gradnet_test_accuracy": "GradNet test accuracy",
    "gain": "gain (GradNet - base accuracy)",
    "gradient_dim": "gradient coordinates kept",
    "full_gradient_dim": "gradient coordinates in all",
    "gradnet_parameters": "GradNet parameters",
    "gradient_seconds": "gradient time (s)",
    "gradnet_seconds": "GradNet training time (s)",
    "variant": "variant",
    "changes": "changes",
    # any run
    "test_accuracy": "test accuracy",
    "train_accuracy": "train accuracy",
    "test_loss": "test loss",
    "train_loss": "train loss",
    "seconds": "time (s)",
}


def column_label(key: str, labels: dict[str, str] | None = None) -> str:
    """The header shown for data key ``key``: ``labels``, then :data:`COLUMN_LABELS`, else the key itself (a
    user's own parameter or metric is shown under the name the user gave it).

    >>> column_label("nn_offset_from_svm"), column_label("knn_test_accuracy_ci"), column_label("my_metric")
    ('NN offset from SVM (in SVM margins)', 'K-NN test accuracy (codes), ± 95% t over seeds', 'my_metric')
    """
    if labels and key in labels:
        return labels[key]
    if key in COLUMN_LABELS:
        return COLUMN_LABELS[key]
    if key.endswith("_ci") and key[:-3] in COLUMN_LABELS:
        return COLUMN_LABELS[key[:-3]] + ", ± 95% t over seeds"
    return key


def _fmt(value: object, floatfmt: str) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else format(value, floatfmt)
    return str(value)


def _inline(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)
    return re.sub(r"\*([^*]+)\*", r"<i>\1</i>", text)


@dataclass
class Report:
    """Build a report block by block, then :meth:`write` it as ``report.md`` and ``report.html``.

    >>> r = Report("Max-margin probe")
    >>> r.table([{"run": "mnist:0,1", "cosine_to_svm": 0.998}])
    >>> md_path, html_path = r.write("runs/report")   # doctest: +SKIP
    """

    title: str
    blocks: list[tuple[Any, ...]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", text, level))

    def text(self, markdown: str) -> None:
        """A paragraph (inline `code`, **bold** and *italic* are rendered in HTML; '- ' lines become a list)."""
        self.blocks.append(("text", markdown))

    def verdict(self, sentence: str, holds: bool | None, note: str = "", subject: str = "") -> None:
        """The finding of a section, first: ``holds: ...`` / ``does not hold: ...`` (see :mod:`.verdicts`);
        ``subject`` names what it is about when a section has several (``MLP 1x100``)."""
        self.blocks.append(("verdict", sentence, holds, note, subject))

    def table(
        self,
        rows: list[dict[str, Any]],
        columns: list[str] | None = None,
        floatfmt: str = ".4f",
        labels: dict[str, str] | None = None,
    ) -> None:
        """A table of ``rows`` (dicts) with ``columns`` (data keys; headers from ``labels``, then
        :data:`COLUMN_LABELS`, so words and units are shown while the data keep their names)."""
        columns = columns or list(dict.fromkeys(k for row in rows for k in row))
        self.blocks.append(("table", rows, columns, floatfmt, [column_label(c, labels) for c in columns]))

    def figure(self, path: str | Path, caption: str = "") -> None:
        self.blocks.append(("figure", Path(path), caption))

    def to_markdown(self, base: Path | None = None) -> str:
        out = [f"# {self.title}", ""]
        for block in self.blocks:
            kind = block[0]
            if kind == "heading":
                out += ["#" * block[2] + " " + block[1], ""]
            elif kind == "text":
                out += [block[1], ""]
            elif kind == "verdict":
                name = f"Finding ({block[4]})" if block[4] else "Finding"
                out += [f"**{name}** — {block[1]}.", ""] + ([f"*{block[3]}*", ""] if block[3] else [])
            elif kind == "table":
                rows, cols, ff, heads = block[1:]
                out.append("| " + " | ".join(heads) + " |")
                out.append("|" + "|".join("---" for _ in cols) + "|")
                out += ["| " + " | ".join(_fmt(r.get(c), ff) for c in cols) + " |" for r in rows]
                out.append("")
            elif kind == "figure":
                path, caption = block[1], block[2]
                full = path.resolve()
                rel = full.relative_to(base) if base and full.is_relative_to(base) else path
                out += [f"![{caption}]({rel.as_posix()})", f"*{caption}*" if caption else "", ""]
        return "\n".join(out)

    def to_html(self) -> str:
        body = [
            f"<h1>{html.escape(self.title)}</h1>",
            f"<p class='meta'>generated by nnprobe, {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}</p>",
        ]
        for block in self.blocks:
            kind = block[0]
            if kind == "heading":
                body.append(f"<h{block[2]}>{html.escape(block[1])}</h{block[2]}>")
            elif kind == "text":
                lines = block[1].splitlines()
                if lines and all(line.startswith("- ") for line in lines if line.strip()):
                    body.append(
                        "<ul>" + "".join(f"<li>{_inline(line[2:])}</li>" for line in lines if line.strip()) + "</ul>"
                    )
                else:
                    body.append(f"<p>{_inline(block[1])}</p>")
            elif kind == "verdict":
                css = {True: "holds", False: "fails", None: "unknown"}[block[2]]
                note = f"<p class='note'>{_inline(block[3])}</p>" if block[3] else ""
                name = html.escape(f"Finding ({block[4]})" if block[4] else "Finding")
                body.append(f"<div class='verdict {css}'><p><b>{name}</b> &mdash; {_inline(block[1])}.</p>{note}</div>")
            elif kind == "table":
                rows, cols, ff, heads = block[1:]
                head = "".join(f"<th>{html.escape(c)}</th>" for c in heads)
                cells = "".join(
                    "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c), ff))}</td>" for c in cols) + "</tr>"
                    for r in rows
                )
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>")
            elif kind == "figure":
                path, caption = block[1], block[2]
                if path.is_file():
                    mime = "image/svg+xml" if path.suffix == ".svg" else f"image/{path.suffix.lstrip('.') or 'png'}"
                    data = base64.b64encode(path.read_bytes()).decode("ascii")
                    body.append(
                        f"<figure><img src='data:{mime};base64,{data}' alt='{html.escape(caption)}'>"
                        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                    )
                else:
                    body.append(f"<p><i>missing figure {html.escape(str(path))}</i></p>")
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n"
        )

    def write(self, out_dir: str | Path, stem: str = "report") -> tuple[Path, Path]:
        """Write ``<stem>.md`` and a self-contained ``<stem>.html`` into ``out_dir``; return both paths."""
        out_dir = Path(out_dir)
        md = write_text_atomic(out_dir / f"{stem}.md", self.to_markdown(base=out_dir.resolve()))
        page = write_text_atomic(out_dir / f"{stem}.html", self.to_html())
        return md, page
