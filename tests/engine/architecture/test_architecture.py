"""The engine's structure, checked: sub-packages import downwards only, no cycles, a stdlib-only contract.

The layer order is the data flow (docs/architecture.md). A module may import from a lower
layer or from its own sub-package; ``train`` and ``infer`` share a layer and never import
each other. The QGIS side may import the engine's ``contract`` and nothing else of it.
``tests/engine/`` mirrors the sub-packages: every test file sits in the folder of the one it tests.
Test modules never import each other: fixtures they share are in ``conftest.py``, plain helpers in
the helper modules beside it (``builders.py``, ``cli_runs.py``, ``models.py``, …).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PACKAGE = REPO / "pix2pix_qgis"
LAYERS = {
    "contract": 0, "core": 1, "chips": 2, "data": 3, "model": 4, "evaluate": 5, "interop": 6,
    "train": 7, "infer": 7, "scale": 8, "cli": 9,
}
TOP = 10  # api.py, sample.py, __init__.py, __main__.py
TESTS = REPO / "tests" / "engine"
# Test folders beside the sub-packages' own: the top-level API, hostile input through every
# command, and the package as a whole (this file).
CROSS_CUTTING = {"api", "end_to_end", "architecture"}
NO_TORCH = ("contract", "core", "chips")


def _module(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """The absolute names an import refers to (module names; ``from . import x`` may name a module)."""
    if node.level == 0:
        return [node.module or ""]
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    target = ".".join(base + ([node.module] if node.module else []))
    if node.module:
        return [target]
    names = []
    for alias in node.names:
        candidate = f"{target}.{alias.name}"
        path = REPO / candidate.replace(".", "/")
        names.append(candidate if path.with_suffix(".py").exists() or path.is_dir() else target)
    return names


def _imports() -> dict[str, set[str]]:
    """Module → engine modules it imports (at any depth of the file, lazy imports included)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module, is_package = _module(path), path.name == "__init__.py"
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                found.update(n for n in _resolve(module, is_package, node) if n.startswith("pix2pix_qgis"))
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("pix2pix_qgis"))
        graph[module] = found - {module}
    return graph


def _layer(module: str) -> tuple[str, int]:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS:
        return parts[1], LAYERS[parts[1]]
    return "(top)", TOP


def _third_party(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_sub_package_is_a_known_layer():
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert packages == set(LAYERS)


def test_every_test_file_sits_in_a_sub_package_folder():
    """tests/engine/<sub-package>/test_*.py, so a reader finds a stage's tests by its folder."""
    allowed = set(LAYERS) | CROSS_CUTTING
    misplaced = [str(path.relative_to(TESTS)) for path in sorted(TESTS.rglob("test_*.py"))
                 if len(path.relative_to(TESTS).parts) != 2 or path.parent.name not in allowed]
    assert misplaced == [], f"move these into the folder of the sub-package they test ({sorted(allowed)})"
    assert sorted(TESTS.rglob("test_*.py")), "no test files found: the check would be vacuous"


def _imported_modules(source: str) -> list[str]:
    """The modules that ``source`` imports, at any depth, as written (``from . import x`` may name a module)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            found += [node.module or ""] + ([] if node.module else [alias.name for alias in node.names])
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return found


def _imported_test_modules(source: str) -> list[str]:
    """The test modules (``test_*``) that ``source`` imports, at any depth, relatively or not."""
    return [m for m in _imported_modules(source) if any(part.startswith("test_") for part in m.split("."))]


def _imported_conftests(source: str) -> list[str]:
    """The ``conftest`` modules that ``source`` imports, at any depth, relatively or not."""
    return [m for m in _imported_modules(source) if "conftest" in m.split(".")]


def test_no_test_module_imports_another():
    """Importing a test module re-registers its fixtures and ties the modules' collection together: a shared
    fixture belongs in a ``conftest.py``, a shared helper in a helper module (``builders.py``, ``cli_runs.py``)."""
    paths = sorted((REPO / "tests").rglob("test_*.py"))
    wrong = {str(path.relative_to(REPO)): modules for path in paths
             if (modules := _imported_test_modules(path.read_text(encoding="utf-8")))}
    assert wrong == {}, "move what these import into a conftest.py or tests/engine/builders.py"
    assert len(paths) > 50, "too few test files found: the check would be vacuous"


def test_the_test_import_checker_sees_every_spelling():
    assert _imported_test_modules("from ..data.test_dataset import mapping_chips\n") == ["data.test_dataset"]
    assert _imported_test_modules("def f():\n    from .test_training import Recorder\n") == ["test_training"]
    assert _imported_test_modules("from . import test_cli\n") == ["test_cli"]
    assert _imported_test_modules("import tests.engine.cli.test_cli\n") == ["tests.engine.cli.test_cli"]
    assert _imported_test_modules("from ..builders import mapping_chips\nimport pytest\n") == []


def test_no_module_imports_a_conftest():
    """pytest loads each ``conftest.py`` itself; importing one loads it a second time under another name and
    hides where a helper lives: constants and plain helpers belong in a helper module (``tests/qgis/paths.py``,
    ``tests/qgis/rasters.py``, ``tests/engine/builders.py``), which ``conftest.py`` imports too."""
    paths = [path for folder in ("engine", "qgis") for path in sorted((REPO / "tests" / folder).rglob("*.py"))]
    wrong = {str(path.relative_to(REPO)): modules for path in paths
             if (modules := _imported_conftests(path.read_text(encoding="utf-8")))}
    assert wrong == {}, "move what these import from conftest.py into a helper module and import it from there"
    assert len(paths) > 50, "too few files found: the check would be vacuous"


def test_the_conftest_import_checker_sees_every_spelling():
    assert _imported_conftests("from ..conftest import REPO, read_raster\n") == ["conftest"]
    assert _imported_conftests("def f():\n    from tests.engine.conftest import x\n") == ["tests.engine.conftest"]
    assert _imported_conftests("from . import conftest\n") == ["conftest"]
    assert _imported_conftests("import tests.qgis.conftest\n") == ["tests.qgis.conftest"]
    assert _imported_conftests("from .paths import REPO\nimport pytest\n") == []


def test_imports_go_down_the_layers_only():
    wrong = []
    for module, targets in _imports().items():
        package, level = _layer(module)
        for target in targets:
            other, other_level = _layer(target)
            if target == "pix2pix_qgis" or other == package:
                continue
            if other_level >= level:
                wrong.append(f"{module} ({package}, layer {level}) imports {target} ({other}, layer {other_level})")
    assert wrong == []


def test_no_import_cycles():
    graph = _imports()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in graph or target == "pix2pix_qgis":
                continue
            if state.get(target) == 1:
                cycles.append(stack[stack.index(target):] + [target])
            elif not state.get(target):
                visit(target, stack)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if not state.get(module):
            visit(module, [])
    assert cycles == []


@pytest.mark.parametrize("package", ["contract"])
def test_the_contract_needs_only_the_standard_library(package):
    for path in (PACKAGE / package).rglob("*.py"):
        outside = _third_party(path) - set(sys.stdlib_module_names) - {"__future__"}
        assert outside == set(), f"{path.relative_to(REPO)} imports {sorted(outside)}"


@pytest.mark.parametrize("package", NO_TORCH)
def test_the_layers_below_the_data_never_import_torch(package):
    for path in (PACKAGE / package).rglob("*.py"):
        assert "torch" not in _third_party(path), f"{path.relative_to(REPO)} imports torch"


def test_the_qgis_side_imports_only_the_engines_contract():
    for path in sorted((REPO / "processing_provider").rglob("*.py")):
        names = _third_party(path)
        assert "torch" not in names and "pix2pix_qgis" not in names, path
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level and "pix2pix_qgis" in (node.module or ""):
                assert node.module.startswith("pix2pix_qgis.contract"), f"{path.relative_to(REPO)}: {node.module}"


def test_the_checker_sees_a_real_violation(tmp_path):
    """The layer rule is not vacuous: an upward import in a lower layer is reported."""
    tree = ast.parse("from ..train.loop import train\n")
    node = tree.body[0]
    assert isinstance(node, ast.ImportFrom)
    (target,) = _resolve("pix2pix_qgis.core.grid", False, node)
    assert target == "pix2pix_qgis.train.loop"
    assert _layer(target)[1] > _layer("pix2pix_qgis.core.grid")[1]
