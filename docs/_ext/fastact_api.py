"""Write the API reference pages from the modules' ``__all__`` lists.

At ``config-inited`` (before autosummary generates its stub pages) this
writes ``docs/api/<module>.rst`` for each documented module: the module's
docstring, then one autosummary table of every name in ``__all__``, in that
order.  A name added to ``__all__`` therefore appears in the reference
without editing any page; ``tools/check_api_docs.py`` checks the built
inventory against ``__all__`` all the same.
"""

import importlib
from pathlib import Path

# module -> heading of its page
MODULES = {
    "fastact": "Kernels: ``fastact``",
    "fastact.nn": "Trainer: ``fastact.nn``",
    "fastact.datasets": "Data sets: ``fastact.datasets``",
}


def _page(module_name, title):
    module = importlib.import_module(module_name)
    names = list(module.__all__)
    lines = [
        ".. This file is written by docs/_ext/fastact_api.py from __all__; do not edit.",
        "",
        title,
        "=" * len(title),
        "",
        f".. automodule:: {module_name}",
        "   :no-members:",
        "",
        f".. currentmodule:: {module_name}",
        "",
        ".. autosummary::",
        "   :toctree: generated/",
        "",
    ]
    lines += [f"   {name}" for name in names]
    return "\n".join(lines) + "\n"


def write_api_pages(app, config=None):
    out = Path(app.srcdir) / "api"
    out.mkdir(exist_ok=True)
    index = [
        ".. This file is written by docs/_ext/fastact_api.py; do not edit.",
        "",
        "API reference",
        "=============",
        "",
        "Every name in the ``__all__`` of each module, with its docstring.",
        "",
        ".. toctree::",
        "   :maxdepth: 1",
        "",
    ]
    for module_name, title in MODULES.items():
        _write_if_changed(out / f"{module_name}.rst", _page(module_name, title))
        index.append(f"   {module_name}")
    _write_if_changed(out / "index.rst", "\n".join(index) + "\n")


def _write_if_changed(path, text):
    # Rewriting an unchanged file would make Sphinx reread it every build.
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def setup(app):
    app.connect("config-inited", write_api_pages, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
