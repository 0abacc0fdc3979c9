"""The sandbox's modules: each imports on its own, none imports one that imports it back,
and the sandbox's faults and errors are its own, not the gateway's."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

import gateway.sandbox
from gateway.errors import GatewayError
from gateway.sandbox.errors import SandboxError

PACKAGE = "gateway.sandbox"
ROOT = Path(gateway.sandbox.__file__).parent

#: The one module allowed to name the gateway's exceptions: where the shared parser's
#: refusals enter the sandbox and become its own.
EDGE = f"{PACKAGE}.parsing"


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PACKAGE, *parts))


FILES = {_name(path): path for path in sorted(ROOT.rglob("*.py"))}
MODULES = sorted(FILES)


def _imports(module: str) -> list[str]:
    """Every module ``module`` names in an import, wherever the import stands (under
    ``TYPE_CHECKING`` and in functions too)."""
    path = FILES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                # A name from a package is one of its modules, or a name the package
                # defines (kept too, for a module outside the sandbox: gateway.soap).
                submodule = f"{base}.{alias.name}"
                names.extend([submodule] if submodule in FILES else [base, submodule])
    return names


def _edges() -> dict[str, list[str]]:
    """Each module of the sandbox, with the modules of the sandbox it imports."""
    return {m: sorted({n for n in _imports(m) if n in FILES and n != m}) for m in MODULES}


def _cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle in an import graph, as the path that closes it, or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for imported in edges.get(module, ()):
            found = visit(imported, [*path, module])
            if found:
                return found
        done.add(module)
        return None

    for module in sorted(edges):
        found = visit(module, [])
        if found:
            return found
    return None


class TestImports:
    @pytest.mark.parametrize("module", MODULES)
    def test_imports_on_its_own(self, module: str) -> None:
        """Each module imports first, alone, in a fresh interpreter."""
        done = subprocess.run(
            [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr

    def test_package_imports_only_what_is_asked(self) -> None:
        """Importing one module runs that module's imports only: the package imports
        nothing of its own."""
        code = (
            "import sys, gateway.sandbox.fng.journal_rules as m; "
            "print(sorted(n for n in sys.modules if n.startswith('gateway')))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        assert done.stdout.strip() == str(
            ["gateway", PACKAGE, f"{PACKAGE}.fng", f"{PACKAGE}.fng.journal_rules"]
        )

    def test_no_import_cycle(self) -> None:
        """No module imports one that imports it back, not even for type checking."""
        edges = _edges()
        assert edges[f"{PACKAGE}.state"], "the import graph was read"
        assert _cycle(edges) is None

    def test_finds_a_cycle(self) -> None:
        """The cycle finder sees a cycle however long, and only a cycle."""
        assert _cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
        assert _cycle({"a": ["b", "c"], "b": ["c"], "c": []}) is None


class TestOwnFaultsAndErrors:
    def test_no_gateway_soap(self) -> None:
        """No module of the sandbox imports the gateway's SOAP (envelopes, fault writers)."""
        found = {
            module: name
            for module in MODULES
            for name in _imports(module)
            if name == "gateway.soap" or name.startswith("gateway.soap.")
        }
        assert found == {}

    def test_gateway_errors_only_at_the_edge(self) -> None:
        """Only the parsing edge names the gateway's exceptions, to translate them."""
        found = {
            module
            for module in MODULES
            for name in _imports(module)
            if name == "gateway.errors" or name.startswith("gateway.errors.")
        }
        assert found == {EDGE}

    def test_every_exception_is_the_sandboxs(self) -> None:
        """Every exception the sandbox defines is a SandboxError and none a GatewayError."""
        defined = [
            cls
            for module in MODULES
            for _, cls in inspect.getmembers(importlib.import_module(module), inspect.isclass)
            if cls.__module__.startswith(PACKAGE) and issubclass(cls, BaseException)
        ]
        assert defined
        assert [cls for cls in defined if issubclass(cls, GatewayError)] == []
        assert [cls for cls in defined if not issubclass(cls, SandboxError)] == []
