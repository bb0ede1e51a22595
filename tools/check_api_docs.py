#!/usr/bin/env python3
"""Fail when a public name is missing from the built API reference.

    python tools/check_api_docs.py [docs/_build/html]

Reads the Sphinx inventory (``objects.inv``) of a built site and checks that
every name in ``__all__`` of fastact, fastact.nn and fastact.datasets is
documented there as ``<module>.<name>``, and that each has an example: a
``>>>`` line in its docstring or a ``docs/api_examples/<module>.<name>.rst``
file (which the API pages include and the doctest builder runs).  Exit
status 1 lists what is missing.
"""

import importlib
import sys
from pathlib import Path

MODULES = ("fastact", "fastact.nn", "fastact.datasets")
EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "api_examples"


def documented_names(html_dir):
    """The fully qualified Python names in a built site's objects.inv."""
    from sphinx.util.inventory import InventoryFile

    path = Path(html_dir) / "objects.inv"
    if not path.is_file():
        raise SystemExit(f"check_api_docs: {path} not found; build the site first")
    with open(path, "rb") as handle:
        inventory = InventoryFile.load(handle, "", lambda base, uri: uri)
    names = set()
    # Sphinx < 8.2 returns a dict of dicts, newer ones an _Inventory object.
    data = getattr(inventory, "data", inventory)
    for role, entries in data.items():
        if role.startswith("py:"):
            names.update(entries)
    return names


def _has_example(obj, fullname):
    if (EXAMPLES / f"{fullname}.rst").is_file():
        return True
    doc = obj.__doc__ if callable(obj) or isinstance(obj, type) else None
    return bool(doc) and ">>>" in doc


def missing_names(html_dir):
    """Public names missing from the reference, and those without an example."""
    documented = documented_names(html_dir)
    missing, no_example = [], []
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            fullname = f"{module_name}.{name}"
            if fullname not in documented:
                missing.append(fullname)
            if not _has_example(getattr(module, name), fullname):
                no_example.append(fullname)
    return missing, no_example


def main(argv):
    html_dir = argv[1] if len(argv) > 1 else "docs/_build/html"
    missing, no_example = missing_names(html_dir)
    total = sum(len(importlib.import_module(m).__all__) for m in MODULES)
    for what, names in (("missing from the API reference", missing),
                        (f"without an example (docstring or {EXAMPLES.name}/<name>.rst)", no_example)):
        if names:
            print(f"check_api_docs: {len(names)} public name(s) {what}:")
            for name in names:
                print("  " + name)
    if missing or no_example:
        return 1
    print(f"check_api_docs: all {total} public names of {', '.join(MODULES)} are documented, "
          f"with examples")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
