"""No import runs up the layers that the README's Design section lists (every import, at module level or
inside a function, read from the source)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "itemvec"

# Lowest first; a module may import its own layer and those below.
LAYERS = [
    {"errors", "rng", "parallel", "progress", "costs", "distributed", "sync_kernels", "arrays", "lookup"},
    {"graph", "config", "outputs", "registry", "tune"},
    {"train", "data", "guard"},
    {"evaluate", "models", "index"},
    {"runs"},
    {"export", "serve"},
    {"cli", "__init__", "__main__", "entry"},
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


PREPARE = """
import sys
from pathlib import Path

import pytest
import itemvec

itemvec.synth_amazon(sys.argv[1] + "/cat.json.gz", products=400, seed=1, progress=False)
itemvec.prepare_amazon([sys.argv[1] + "/cat.json.gz"], sys.argv[1] + "/data", seed=1, progress=False,
                       log=lambda line: None)
sys.path.insert(0, sys.argv[2])
from test_ratings_cli import prepare_planted_ratings

prepare_planted_ratings(Path(sys.argv[1]) / "ratings")
"""

LIGHT = """
import sys
from pathlib import Path

import pytest
import itemvec
from itemvec import cli, runs
from itemvec.evaluate.protocol import protocol
from itemvec.train import Trainer

kind = protocol("pairs")
data = kind.open(sys.argv[1] + "/data")
training = kind.training(data)
for name in ("popularity", "adamic-adar"):
    cls, config = runs.resolve_config(name)
    model = cls(config)
    model.fit(training, Trainer(evaluate=kind.validation_function(model, training, config), progress=False))
kind = protocol("ratings")
data = kind.open(Path(sys.argv[1]) / "ratings" / "data")
training = kind.training(data)
cls, config = runs.resolve_config("popularity", kind="ratings")
model = cls(config)
model.fit(training, Trainer(evaluate=kind.validation_function(model, training, config), progress=False))
print(" ".join(sorted(m for m in ("numba", "llvmlite", "torch", "matplotlib", "sklearn") if m in sys.modules)))
"""


def test_a_heuristic_models_training_loads_no_heavy_runtime(tmp_path):
    """Reading, checking and fitting popularity or adamic-adar (product pairs) and popularity (ratings), as
    `itemvec train` does before the test evaluation, loads neither numba (llvmlite alone is about 100 MB resident) nor torch, matplotlib or
    scikit-learn: they are imported where a kernel, a network or a plot first needs them."""
    import subprocess
    import sys

    for script in (PREPARE, LIGHT):  # a prepare is a process of its own (its id table and negatives are numba)
        result = subprocess.run([sys.executable, "-c", script, str(tmp_path), str(Path(__file__).parent)],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"loaded: {result.stdout.strip()}"


NO_TORCH = """
import sys
sys.path.insert(0, sys.argv[1])
from test_implicit_models import FAST, checkerboard
from itemvec import registry

name = sys.argv[2]
data, _ = checkerboard(features=name == "fm")
model = registry.get(name, "ratings")(**FAST[name]).fit(data, progress=False)
model.score_users([0, 1]), model.predict([0, 1], [2, 3])
print("torch" if "torch" in sys.modules else "")
"""


@pytest.mark.parametrize("name", ["triplet", "deep-triplet", "fm"])
def test_fitting_a_numba_network_loads_no_torch(name):
    """triplet, fm and deep-triplet's usual network train and score with numba kernels: torch stays unloaded."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", NO_TORCH, str(Path(__file__).parent), name], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"fitting {name} loaded torch"


SETTINGS = """
import os, sys
from itemvec.entry import configure
configure(sys.argv[1])
import pyarrow as pa
print(pa.default_memory_pool().backend_name, os.environ["OPENBLAS_THREAD_TIMEOUT"])
"""


@pytest.mark.parametrize("command, env, expected", [
    ("train", {}, "system 4"), ("compare", {}, "system 4"), ("prepare", {}, "mimalloc 4"),
    ("train", {"ARROW_DEFAULT_MEMORY_POOL": "mimalloc", "OPENBLAS_THREAD_TIMEOUT": "20"}, "mimalloc 20"),
])
def test_the_command_sets_the_libraries_before_they_load(command, env, expected):
    """`itemvec` sets OpenBLAS's spin (its workers sleep at once after a product instead of taking the second
    core from the next numba kernel) and, for every command but prepare, Arrow's allocator (the C library's:
    mimalloc keeps the freed pages of the tables read); a value the user set stays."""
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if k not in ("ARROW_DEFAULT_MEMORY_POOL", "OPENBLAS_THREAD_TIMEOUT")}
    result = subprocess.run([sys.executable, "-c", SETTINGS, command], capture_output=True, text=True, timeout=120,
                            env={**clean, **env})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == expected.split()


def test_the_entry_point_finds_the_command():
    from itemvec.entry import command_of

    assert command_of(["prepare", "ratings", "x", "--out", "d"]) == "prepare"
    assert command_of(["--help"]) == "" and command_of([]) == ""
    assert command_of(["train", "bpr", "--data", "d"]) == "train"


def test_python_dash_m_and_the_script_run_the_entry_point():
    import subprocess
    import sys

    assert "itemvec.entry:main" in (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    result = subprocess.run([sys.executable, "-m", "itemvec", "models"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "deep-triplet" in result.stdout, result.stderr
