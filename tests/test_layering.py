"""The packages read top to bottom: a module imports only from its own package or earlier ones."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "tfrec"
# tfrec/__init__.py (lazy short names) and __main__.py sit above every layer.
LAYERS = ["_keras", "_lazy", "data", "distribute", "layers", "models", "training", "evaluation", "export", "serving", "bench", "cli"]


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "tfrec" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, node.module)] + [(node.lineno, f"{node.module}.{a.name}") for a in node.names if node.module == "tfrec"]
    return found


def test_every_module_is_in_a_layer():
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts in (("__init__.py",), ("__main__.py",)):
            continue
        layer = relative.parts[0].removesuffix(".py")
        assert layer in LAYERS, f"tfrec/{relative} is in no layer; add its package to LAYERS in the order it belongs"


def test_no_module_imports_a_later_layer():
    violations = []
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts in (("__init__.py",), ("__main__.py",)):
            continue
        own = LAYERS.index(relative.parts[0].removesuffix(".py"))
        for line, module in _imports(path):
            layer = _layer(module)
            if layer in LAYERS and LAYERS.index(layer) > own:
                violations.append(f"tfrec/{relative}:{line} imports {module} ({layer} comes after {LAYERS[own]})")
    assert not violations, "imports against the layer order " + " < ".join(LAYERS) + ":\n" + "\n".join(violations)
