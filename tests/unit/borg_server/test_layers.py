"""The server package's layers: each subpackage imports only from itself and the ones below it, so the
dependencies point one way (docs/explanation/code-map.md). A new import that points up fails here, naming both ends."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "entrypoint" / "borg_server"
LAYERS = (  # bottom first: a layer may import the layers before it, never one after it
    "system",
    "records",
    "repository",
    "config",
    "provision",
    "sessions",
    "compaction",
    "monitor",
    "status",
    "replica",
    "cli",
)


def imported_layers(path: Path) -> set[str]:
    """Given a module, return the subpackages of borg_server it imports (also within functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("borg_server."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.ImportFrom) and node.module == "borg_server":
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith("borg_server."))
    return found


def test_every_module_lives_in_a_layer():
    top_level = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert top_level == ["__init__.py", "__main__.py"]
    subpackages = sorted(path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists())
    assert subpackages == sorted(LAYERS)


def test_imports_point_down_the_layers_only():
    upward = []
    for layer in LAYERS:
        for module in sorted((PACKAGE / layer).glob("*.py")):
            for target in imported_layers(module):
                if LAYERS.index(target) > LAYERS.index(layer):
                    upward.append(f"{layer}/{module.name} imports borg_server.{target}")
    assert upward == []


def test_the_layer_check_sees_an_import_that_points_up(tmp_path):
    module = tmp_path / "sample.py"
    module.write_text("def f():\n    from borg_server.cli import admin\n    from borg_server import monitor\n")
    assert imported_layers(module) == {"cli", "monitor"}
