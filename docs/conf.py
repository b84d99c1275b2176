"""Sphinx configuration: the guides are Markdown (MyST), the API reference
is autodoc over the installed package.

The reference documents the compiled backend, the one type checkers see:
docstrings come from the installed extension, signatures and types from its
stubs (_compiled.pyi), the one typed description of the API."""

import ast
import copy
import pathlib

from sphinx.util import logging

import fastsync

if fastsync.BACKEND != "cython":
    raise RuntimeError(
        f"the API reference documents the compiled backend, but fastsync.BACKEND is "
        f"{fastsync.BACKEND!r}: install fastsync with its extension (pip install .)"
    )

project = "fastsync"
copyright = "2026, the fastsync developers"   # as LICENSE says
release = version = fastsync.__version__
extensions = ["sphinx.ext.autodoc", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
html_theme = "alabaster"
myst_heading_anchors = 3
autodoc_typehints = "signature"
autodoc_member_order = "bysource"   # the order api.rst lists them in


def _stub_functions():
    """{"Lock.acquire": FunctionDef, ...} and {"BoundedSemaphore": ["Semaphore"]}
    from the compiled backend's stubs."""
    stub = pathlib.Path(fastsync.__file__).with_name("_compiled.pyi")
    functions, bases = {}, {}
    for node in ast.parse(stub.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef):
            bases[node.name] = [ast.unparse(base) for base in node.bases]
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    functions[f"{node.name}.{item.name}"] = item
        elif isinstance(node, ast.FunctionDef):
            functions[node.name] = node
    return functions, bases


_STUB_FUNCTIONS, _STUB_BASES = _stub_functions()


def _stub_function(qualname):
    """The stub's definition of Class.method, looked up through the stub's bases."""
    if qualname in _STUB_FUNCTIONS:
        return _STUB_FUNCTIONS[qualname]
    owner, _, method = qualname.rpartition(".")
    for base in _STUB_BASES.get(owner, ()):
        found = _stub_function(f"{base}.{method}")
        if found is not None:
            return found
    return None


def _signature_from_stub(app, what, name, obj, options, signature, return_annotation):
    if name == "fastsync.LockLike":
        return "", None   # a Protocol, never constructed: no parameters to show
    if name.startswith(("fastsync.debug.", "fastsync.LockLike.")):
        return None   # pure Python, typed inline: autodoc reads its own signatures
    qualname = name.removeprefix("fastsync.")
    if what == "class":
        function = _stub_function(f"{qualname}.__init__")
    elif what == "method":
        function = _stub_function(qualname)
    else:
        return None
    if function is None:
        # A documented class or method the stubs lack: type checkers can't see
        # it either.  A warning, so the build (-W) fails.
        logging.getLogger(__name__).warning("%s: not in fastsync/_compiled.pyi", name)
        return None
    arguments = copy.deepcopy(function.args)
    # The stubs' methods take self first; the documented signature does not.
    if arguments.posonlyargs:
        arguments.posonlyargs = arguments.posonlyargs[1:]
    else:
        arguments.args = arguments.args[1:]
    text = f"({ast.unparse(arguments)})"
    if what == "class" or function.returns is None:
        return text, None
    return text, ast.unparse(function.returns)


def setup(app):
    app.connect("autodoc-process-signature", _signature_from_stub)
