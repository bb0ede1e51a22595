"""The .pyi stubs of the compiled modules name exactly what the modules export."""

import ast
import pathlib

import pytest

import fastact
from fastact import _kernels, _ops


def _stub_names(module):
    stub = pathlib.Path(module.__file__).with_name(module.__name__.split(".")[-1] + ".pyi")
    tree = ast.parse(stub.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if not name.startswith("_")}


@pytest.mark.parametrize("module", [_kernels, _ops], ids=lambda m: m.__name__)
def test_stub_matches_module(module):
    public = {
        name for name, value in vars(module).items()
        if not name.startswith("_") and (callable(value) or isinstance(value, (int, tuple)))
        and getattr(value, "__module__", module.__name__) in (module.__name__, None)
        and not isinstance(value, type(fastact))
    }
    assert _stub_names(module) == public


def test_stubs_and_marker_ship_with_the_package():
    package = pathlib.Path(fastact.__file__).parent
    assert (package / "py.typed").exists()
    assert (package / "_kernels.pyi").exists() and (package / "_ops.pyi").exists()
