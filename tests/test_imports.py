"""No import runs up the layers that the README's Design section lists (every import, at module level or
inside a function, read from the source)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "itemvec"

# Lowest first; a module may import its own layer and those below.
LAYERS = [
    {"errors", "rng", "parallel", "progress", "costs", "distributed"},
    {"graph", "config", "outputs", "registry", "tune"},
    {"train", "data", "guard"},
    {"evaluate", "models", "index"},
    {"runs"},
    {"export", "serve"},
    {"cli", "__init__", "__main__"},
]


def layer_of(parts: list[str]) -> int:
    top = parts[0] if parts else "__init__"
    for level, names in enumerate(LAYERS):
        if top in names:
            return level
    raise AssertionError(f"itemvec.{'.'.join(parts)} is in no layer of LAYERS; place it")


def imports(path: Path) -> list[tuple[int, list[str]]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "itemvec":
            base = node.module.split(".")[1:]
            found += [(node.lineno, base or [alias.name]) for alias in node.names] if not base else \
                [(node.lineno, base)]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[1:]) for alias in node.names
                      if alias.name.split(".")[0] == "itemvec"]
    return found


def test_no_import_runs_up_the_layers():
    upward = []
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        own = layer_of(parts)
        for line, target in imports(path):
            if layer_of(target) > own:
                upward.append(f"{path.relative_to(SRC)}:{line} imports itemvec.{'.'.join(target)}")
    assert not upward, "\n".join(upward)


def test_the_layers_cover_every_module():
    tops = {path.relative_to(SRC).parts[0].removesuffix(".py") for path in SRC.rglob("*.py")}
    assert tops == set().union(*LAYERS)
