"""Sphinx configuration of the API reference (``make docs``): the guide pages (README.md, docs/*.md, read by
MyST) and one page per module of dynnn_lib (autodoc, written here at build time), built with warnings as errors."""
from __future__ import annotations

import pkgutil
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

project = "dynnn"
extensions = ["sphinx.ext.autodoc", "myst_parser"]
root_doc = "docs/api/index"
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
# the repository root is the source folder so that the guide pages' relative links resolve as they do on GitHub;
# everything but the guide pages and this folder is left out
include_patterns = ["README.md", "docs/*.md", "docs/journal/*.md", "docs/api/*.rst", "docs/api/modules/*.rst"]
# folders never walked (make test's .venv alone holds tens of thousands of files)
exclude_patterns = [".*", "build", "runs", "reports", "notebooks", "tests", "benchmarks", "params", "dynnn_lib"]
default_role = "literal"          # `name` in a docstring is code, as in the Markdown pages
autodoc_member_order = "bysource"
# a member is documented on the page of the module that defines it; the facades that re-export it (``__all__``)
# do not repeat it
autodoc_default_options = {"members": True, "ignore-module-all": True}
autodoc_typehints = "none"
myst_heading_anchors = 3
html_theme = "alabaster"
# the journal's entries keep the heading levels they were written with (an H1 then H3s); a skipped level is cosmetic
suppress_warnings = ["myst.header"]


def _modules() -> list[str]:
    import dynnn_lib

    return ["dynnn_lib", *sorted(m.name for m in pkgutil.walk_packages(dynnn_lib.__path__, "dynnn_lib."))]


def _write_module_pages(app) -> None:
    """One page per module (automodule with its documented members); rewritten only when changed, so an
    incremental build stays incremental."""
    out = Path(__file__).parent / "modules"
    out.mkdir(exist_ok=True)
    for name in _modules():
        text = f"{name}\n{'=' * len(name)}\n\n.. automodule:: {name}\n"
        page = out / f"{name}.rst"
        if not page.exists() or page.read_text() != text:
            page.write_text(text)


# a guide page's link to a folder of the package (GitHub shows the folder) goes to that package's page here
_FOLDER_LINK = re.compile(r"\]\((?:\.\./)*(dynnn_lib(?:/\w+)*)/\)")


def _folder_links(app, docname: str, source: list[str]) -> None:
    up = "../" * docname.count("/")
    source[0] = _FOLDER_LINK.sub(lambda m: f"]({up}docs/api/modules/{m.group(1).replace('/', '.')}.rst)", source[0])


def _front_page(app, exception) -> None:
    """build/docs/index.html: the reference opens at its contents page (the root page lives in docs/api/)."""
    if exception is None and app.builder.format == "html":
        (Path(app.outdir) / "index.html").write_text(
            '<!DOCTYPE html><meta charset="utf-8"><meta http-equiv="refresh" content="0; url=docs/api/index.html">'
            '<a href="docs/api/index.html">dynnn: guide and API reference</a>\n')


_HTML_ANCHOR = re.compile(r'<a id="([^"]+)"></a>')


def _html_anchors(app, docname: str, source: list[str]) -> None:
    """A generated table's row anchors (``<a id="square"></a>``: the glossary's) are link targets here as on GitHub:
    each becomes an anonymous label of its page, so ``glossary.md#square`` resolves and a wrong one still warns."""
    std = app.env.get_domain("std")
    for anchor in _HTML_ANCHOR.findall(source[0]):
        std.anonlabels[f"{docname}#{anchor}"] = (docname, anchor)


def setup(app):
    app.connect("source-read", _html_anchors)
    app.connect("builder-inited", _write_module_pages)
    app.connect("build-finished", _front_page)
    app.connect("source-read", _folder_links)
