"""Sphinx configuration for the fastact documentation.

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html``
(``pip install -e ".[docs]"`` first).  The API pages are written from the
``__all__`` lists of fastact, fastact.nn and fastact.datasets each time the
site is built (``docs/api/``, not in git), so no public name can be missing.
"""

import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import fastact  # noqa: E402  (the installed package, compiled)

project = "fastact"
author = "fastact developers"
copyright = f"2026, {author}"
release = fastact.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinxarg.ext",
    "fastact_api",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# api_examples/ holds one doctest file per public name whose docstring has
# no Examples section; the autosummary templates include them.
exclude_patterns = ["_build", "api_examples", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# Topic pages that may be absent from a checkout: their toctree lines in
# index.md are dropped when the page is not there (see setup() below).
OPTIONAL_PAGES = ("threads", "dask", "half-precision", "checkpoints", "sanitizers")

# -- MyST: Markdown pages with dollar maths and {directive} blocks ----------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# -- autodoc / autosummary / numpydoc ---------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autosummary_context = {
    "fastact_examples": {p.stem for p in (HERE / "api_examples").glob("*.rst")},
}
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = True
numpydoc_class_members_toctree = False
# Types in parameter lists link to NumPy's and Python's docs when their
# inventories are at hand (see intersphinx below); else they stay plain text.
numpydoc_xref_param_type = False
numpydoc_xref_ignore = {"optional", "default", "of", "or", "shape", "array_like",
                        "file-like", "callable", "sequence", "path-like", "int,"}
numpydoc_xref_aliases = {
    "ndarray": "numpy.ndarray",
    "dtype": "numpy.dtype",
    "Generator": "numpy.random.Generator",
}

# -- doctest: every example is run by ``sphinx-build -b doctest`` -----------
doctest_global_setup = """
import numpy as np
import fastact as fa
np.set_printoptions(precision=8, suppress=False, legacy=False)
"""
doctest_test_doctest_blocks = "default"

# -- intersphinx ------------------------------------------------------------
# Links to NumPy, SciPy, Dask and Python.  The inventories are read from
# docs/_intersphinx/<name>.inv when present (tools/fetch_intersphinx.py puts
# them there on a machine with web access), else fetched from the web when
# the site answers within a few seconds; without either a name is rendered
# as code without a link, and the build still passes with -W.
_INTERSPHINX = {
    "python": "https://docs.python.org/3/",
    "numpy": "https://numpy.org/doc/stable/",
    "scipy": "https://docs.scipy.org/doc/scipy/",
    "dask": "https://docs.dask.org/en/stable/",
}


def _reachable(url, timeout=3.0):
    if os.environ.get("FASTACT_DOCS_OFFLINE"):
        return False
    import urllib.request

    try:
        with urllib.request.urlopen(url + "objects.inv", timeout=timeout) as response:
            return response.status == 200
    except Exception:
        return False


intersphinx_mapping = {}
for _name, _url in _INTERSPHINX.items():
    _local = HERE / "_intersphinx" / f"{_name}.inv"
    if _local.is_file():
        intersphinx_mapping[_name] = (_url, str(_local))
    elif _reachable(_url):
        intersphinx_mapping[_name] = (_url, None)
intersphinx_timeout = 10
numpydoc_xref_param_type = {"numpy", "python"} <= set(intersphinx_mapping)

# -- HTML -------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"fastact {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_last_updated_fmt = time.strftime("%Y-%m-%d")


def _drop_absent_optional_pages(app, docname, source):
    if docname != root_doc:
        return
    lines = source[0].splitlines(keepends=True)
    absent = {name for name in OPTIONAL_PAGES
              if not any((HERE / (name + suffix)).is_file() for suffix in source_suffix)}
    source[0] = "".join(line for line in lines if line.strip() not in absent)


def setup(app):
    app.connect("source-read", _drop_absent_optional_pages)
