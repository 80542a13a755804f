"""The layering the README's Architecture section describes, held against the code:
each package imports only the layers below it, modules stay small, and only services
(and the app that builds them) touch the store."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
MAX_LINES = 450

# package -> packages it must never import (at any depth of the module)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "nsml.sdk": ("nsml.server", "nsml.store", "nsml.runners", "nsml.cli", "nsml.schemas", "kortext"),
    "nsml.client": ("nsml.server", "nsml.store.sql", "nsml.runners", "nsml.cli", "nsml.sdk", "kortext"),
    "nsml.cli": ("nsml.server", "nsml.store.sql", "nsml.runners", "nsml.artifacts", "nsml.sdk", "kortext"),
    "nsml.schemas": ("nsml.server", "nsml.store.sql", "nsml.runners", "nsml.cli", "nsml.client"),
    # the driver talks to whatever process a runner started (runners.base), never a runner
    "nsml.evaluation": (
        "nsml.server",
        "nsml.store.sql",
        "nsml.cli",
        "nsml.client",
        "nsml.runners.local",
        "nsml.runners.ray_cluster",
        "nsml.runners.process",
    ),
    "nsml.store": ("nsml.server", "nsml.runners", "nsml.cli", "nsml.client", "nsml.artifacts"),
    "nsml.artifacts": ("nsml.server", "nsml.store", "nsml.cli", "nsml.runners"),
    "nsml.runners": ("nsml.server", "nsml.store.sql", "nsml.cli", "nsml.sdk"),
    "nsml.server": ("nsml.cli", "nsml.sdk"),
    "nsml.datasets": ("nsml.server", "nsml.store", "nsml.runners", "nsml.cli"),
    "kortext": ("nsml.server", "nsml.store", "nsml.runners", "nsml.cli", "nsml.artifacts"),
}

# where a module-level import of the platform would make the package heavier than it claims
LAZY_ONLY: dict[str, tuple[str, ...]] = {
    "kortext": ("nsml.client",),  # publishing, only with --publish
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> list[tuple[str, Path]]:
    return sorted((_module_name(p), p) for p in SRC.rglob("*.py") if "migrations" not in p.parts)


def _imports(path: Path, module: str) -> list[tuple[str, bool]]:
    """(imported module, at module level) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((base, id(node) in top_level))
            found += [(f"{base}.{alias.name}", id(node) in top_level) for alias in node.names]
    return found


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_each_layer_imports_only_the_layers_below_it() -> None:
    wrong = []
    for module, path in _sources():
        for package, forbidden in FORBIDDEN.items():
            if not _within(module, package):
                continue
            for imported, _ in _imports(path, module):
                if any(_within(imported, f) for f in forbidden):
                    wrong.append(f"{module} imports {imported}")
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_packages_that_stay_light_import_the_platform_only_when_used() -> None:
    wrong = []
    for module, path in _sources():
        for package, lazy in LAZY_ONLY.items():
            if _within(module, package):
                wrong += [
                    f"{module} imports {name} at module level"
                    for name, top in _imports(path, module)
                    if top and any(_within(name, p) for p in lazy)
                ]
    assert not wrong, "\n".join(wrong)


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in _sources()}
    large = {m: n for m, n in sizes.items() if n > MAX_LINES}
    assert not large, f"split these by concern (at most {MAX_LINES} lines): {large}"


@pytest.mark.parametrize("package", ["nsml.server.routers", "nsml.server.web", "nsml.server.deps"])
def test_routes_and_pages_reach_data_through_services_only(package: str) -> None:
    """The store and the artifact store belong to services; a route that reads them
    directly skips the rules the services hold (visibility, quotas, limits)."""
    wrong = []
    for module, path in _sources():
        if not _within(module, package):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("store", "artifacts"):
                wrong.append(f"{module}:{node.lineno} uses .{node.attr}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                ("nsml.store.sql", "nsml.artifacts")
            ):
                wrong.append(f"{module}:{node.lineno} imports {node.module}")
    assert not wrong, "\n".join(wrong)
