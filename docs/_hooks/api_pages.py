"""MkDocs hook: the API reference pages list every name a package exports, read from its ``__all__``.

A page under ``docs/api/`` holds a marker line per module, ``<!-- api: nnprobe.probes.margin -->``; this hook
replaces it with the module's docstring and one mkdocstrings block (``::: path``) per name of its ``__all__``, so
that a newly exported name appears in the reference without editing a page (and ``tests/test_docs.py`` fails when
it has no docstring). ``<!-- api-table: nnprobe -->`` lists a module's names as a table of links instead: the
top-level package only re-exports.

Each object is documented once, under its home: the documented module whose name is the longest prefix of the
module that defines it (``nnprobe.probes.margin`` for ``nnprobe.probes.margin.svm.fit.fit_svm``); another
package that re-exports it links there. Blocks name the defining module (``obj.__module__``), so the lazy exports
(:mod:`nnprobe.lazy`), which a static reader cannot follow, need no special case.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
from dataclasses import dataclass
from pathlib import Path

_spec = importlib.util.spec_from_file_location("nnprobe_docs_docstrings", Path(__file__).with_name("docstrings.py"))
_docstrings = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_docstrings)
markdown_docstring = _docstrings.markdown_docstring  # the API pages' reading of a docstring, for the table too

MARKER = re.compile(r"^<!-- (api|api-table): ([\w.]+) -->$", re.M)


@dataclass(frozen=True)
class Entry:
    """One exported name of a documented module: its public ``name``, the dotted ``path`` mkdocstrings reads and
    the ``home`` module whose page documents it."""

    module: str
    name: str
    path: str
    home: str


def _path(module: str, name: str) -> str:
    """The dotted path of the object ``module`` exports as ``name``: where it is defined when it has a
    ``__module__`` (a class, a function), else the module the lazy export reads it from."""
    mod = importlib.import_module(module)
    obj = getattr(mod, name)
    if (inspect.isclass(obj) or inspect.isroutine(obj)) and getattr(obj, "__module__", None):
        return f"{obj.__module__}.{obj.__qualname__}"
    source = mod.__dict__.get("_lazy_names", {}).get(name, module)
    source_module, _, attribute = source.partition(":")
    return f"{source_module}.{attribute or name}"


def plan(modules: list[str], tables: list[str] = ()) -> list[Entry]:
    """Every exported name of ``modules`` and ``tables``, each with the module whose page documents it (never a
    table: a name only a table module exports is documented nowhere, and its link fails the strict build)."""
    paths = {
        (m, n): _path(m, n)
        for m in [*modules, *tables]
        for n in importlib.import_module(m).__all__
        if n != "__version__"
    }
    homes: dict[str, str] = {}
    for path in sorted(set(paths.values())):
        exporters = sorted(m for (m, _), p in paths.items() if p == path and m in modules)
        owners = [m for m in exporters if path.startswith(m + ".")]
        # the longest documented prefix that exports it; else the first module (by name) that does
        homes[path] = max(owners, key=len) if owners else exporters[0] if exporters else "(nowhere)"
    return [Entry(m, n, p, homes[p]) for (m, n), p in paths.items()]


def module_markdown(module: str, entries: list[Entry]) -> str:
    """The reference of ``module``: its docstring, a block per name it is home to, links to the others."""
    parts = [
        f"::: {module}\n    options:\n      members: false\n      show_root_heading: false\n"
        "      show_root_toc_entry: false\n"
    ]
    own = sorted((e for e in entries if e.module == module and e.home == module), key=lambda e: e.name.lower())
    parts += [f"::: {e.path}\n" for e in own]
    others = sorted((e for e in entries if e.module == module and e.home != module), key=lambda e: e.name.lower())
    if others:
        parts.append(
            "## Also exported here\n\n"
            + "\n".join(f"- [`{e.name}`][{e.path}] (documented under `{e.home}`)" for e in others)
            + "\n"
        )
    return "\n".join(parts)


def table_markdown(module: str, entries: list[Entry]) -> str:
    """``module``'s names as a table: each name linked to where it is documented, its docstring's first paragraph."""
    mod = importlib.import_module(module)
    rows = ["| name | what it is |", "|---|---|"]
    for name in mod.__all__:
        if name == "__version__":
            continue
        path = next(e.path for e in entries if e.module == module and e.name == name)
        doc = markdown_docstring(inspect.getdoc(getattr(mod, name)) or "")
        first = doc.split("\n\n")[0].replace("\n", " ").replace("|", "\\|")
        rows.append(f"| [`{name}`][{path}] | {first} |")
    return "\n".join(rows) + "\n"


_PLAN: list[Entry] = []


def on_config(config, **kwargs):
    """Import nnprobe from the checkout being built, as mkdocstrings reads it (``paths: [.]``), even where another
    checkout is installed."""
    root = str(Path(config.config_file_path).resolve().parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    return config


def on_files(files, config, **kwargs):
    """Read the markers of every page under ``api/`` and plan the whole reference once."""
    markers = [
        m
        for file in files.documentation_pages()
        if file.src_uri.startswith("api/")
        for m in MARKER.finditer(file.content_string)
    ]
    _PLAN[:] = plan(
        sorted({m[2] for m in markers if m[1] == "api"}), sorted({m[2] for m in markers if m[1] == "api-table"})
    )
    return files


def on_page_markdown(markdown, page, config, files, **kwargs):
    """Replace each marker of the page with the module's reference (or table)."""

    def expand(match):
        kind, module = match[1], match[2]
        return table_markdown(module, _PLAN) if kind == "api-table" else module_markdown(module, _PLAN)

    return MARKER.sub(expand, markdown)
