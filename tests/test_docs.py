"""The documentation's API examples match the public names.

The site itself is built, doctested and checked against ``__all__`` by
``.ci/run`` (Sphinx is the docs extra, not a test dependency); these checks
need no Sphinx and catch the common slips early: a new public name without
an example, or an example file left behind for a name that is gone.
"""

import importlib
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "api_examples"
CHECK = ROOT / "tools" / "check_api_docs.py"

pytestmark = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="no docs/ next to the tests")


def public_names():
    tool = runpy.run_path(str(CHECK))
    for module_name in tool["MODULES"]:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            yield f"{module_name}.{name}", getattr(module, name)


def test_every_public_name_has_an_example():
    tool = runpy.run_path(str(CHECK))
    missing = [full for full, obj in public_names() if not tool["_has_example"](obj, full)]
    assert missing == []


def test_every_example_file_belongs_to_a_public_name():
    names = {full for full, _ in public_names()}
    stale = sorted(p.stem for p in EXAMPLES.glob("*.rst") if p.stem not in names)
    assert stale == []


def test_example_files_are_doctests():
    empty = sorted(p.name for p in EXAMPLES.glob("*.rst") if ">>> " not in p.read_text())
    assert empty == []


def test_python_examples_in_pages_are_doctests():
    # A ```python fence is shown but never run; examples go in ```{doctest}
    # fences, which `sphinx -b doctest` runs in .ci/run.
    pages = sorted((ROOT / "docs").glob("*.md"))
    untested = [p.name for p in pages if "```python" in p.read_text() or "```py\n" in p.read_text()]
    assert untested == []
