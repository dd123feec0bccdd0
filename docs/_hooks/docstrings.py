"""Griffe extension of the API reference: nnprobe's docstrings, written for ``help()`` and Sphinx-style readers,
read as Markdown.

* Sphinx roles (``:func:`measure```, ``:class:`~nnprobe.stats.Interval```) become code spans: the reference does
  not turn them into links, and Markdown would print the role's name;
* doctest examples (``>>>`` lines and their output) become ``pycon`` code blocks, without their ``# doctest:``
  flags: Markdown would read ``>>>`` as a quotation three levels deep.

Loaded by mkdocstrings (``mkdocs.yml``: ``extensions``); it changes what the site shows, never the code.
"""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|attr|data|exc|obj|const):`(~?)([^`]+)`")
FLAGS = re.compile(r"\s*#\s*doctest:.*$")


def markdown_docstring(text: str) -> str:
    """``text`` with Sphinx roles as code spans and each run of doctest lines (up to a blank line) in a ``pycon``
    block, its indentation removed."""
    text = ROLE.sub(lambda m: f"`{m[2].rsplit('.', 1)[-1] if m[1] else m[2]}`", text)  # ~a.b.C shows C
    out: list[str] = []
    in_example = in_fence = False
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith("```") and not in_example:  # a fenced block of its own (or already rewritten)
            in_fence = not in_fence
        elif stripped.startswith(">>>") and not in_example and not in_fence:
            indent = line[: len(line) - len(line.lstrip())]
            if out and out[-1].strip():
                out.append("")
            out.append("```pycon")
            in_example = True
        elif in_example and not stripped:
            out.append("```")
            in_example = False
        if in_example:
            line = FLAGS.sub("", line[len(indent) :] if line.startswith(indent) else line)
        out.append(line)
    if in_example:
        out.append("```")
    return "\n".join(out)


class MarkdownDocstrings(griffe.Extension):
    """Rewrite every docstring with :func:`markdown_docstring` once the object tree is built."""

    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        if not obj.is_alias and obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)
