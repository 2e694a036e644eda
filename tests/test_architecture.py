"""The house rules of docs/architecture.md, checked on the source: one installed namespace,
imports that only point down the layers, no import loops, no scheme names outside the
schemes' own modules."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: folder -> installed package, and what each layer may import (besides itself).
LAYERS: dict[str, tuple[str, set[str]]] = {
    "core": ("tsodso.core", set()),
    "coordination": ("tsodso.coordination", {"core"}),
    "results": ("tsodso.results", {"core"}),
    "simulators": ("tsodso.simulators", {"core", "coordination", "results"}),
    "scenarios": ("tsodso.scenarios", {"core", "coordination", "simulators"}),
    "tsodso": ("tsodso", {"core", "coordination", "results", "simulators", "scenarios"}),
}
_LAYER_OF_PACKAGE = {pkg: folder for folder, (pkg, _) in LAYERS.items()}


def _module_name(path: Path) -> str:
    folder, *rest = path.relative_to(ROOT).with_suffix("").parts
    parts = [*LAYERS[folder][0].split("."), *rest]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for folder in LAYERS for p in (ROOT / folder).rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """tsodso modules imported by `path` (module level and inside functions)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("tsodso")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.startswith("tsodso"):
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def _layer(module: str) -> str:
    """The layer folder of a tsodso module name (longest matching package prefix)."""
    best = ""
    for pkg in _LAYER_OF_PACKAGE:
        if (module == pkg or module.startswith(pkg + ".")) and len(pkg) > len(best):
            best = pkg
    return _LAYER_OF_PACKAGE[best]


def test_imports_only_point_down_the_layers():
    wrong = []
    for module, path in _sources().items():
        mine = _layer(module)
        for imported in _imports(path):
            other = _layer(imported)
            if other != mine and other not in LAYERS[mine][1]:
                wrong.append(f"{path.relative_to(ROOT)} imports {imported} ({mine} -> {other})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_loops():
    """No cycle among modules (a package importing its own submodules is not a loop)."""
    sources = _sources()
    graph = {}
    for module, path in sources.items():
        targets = set()
        for imported in _imports(path):
            while imported and imported not in sources:
                imported = imported.rpartition(".")[0]
            if imported and imported != module and not module.startswith(imported + "."):
                targets.add(imported)
        graph[module] = targets
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                pytest.fail("import loop: " + " -> ".join([*stack[stack.index(t):], t]))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


SCHEME_NAMES = ("none", "centralized", "local", "shared_balancing", "common", "integrated")


def _name_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """Scheme names used to decide something: compared with, used as dict keys or
    subscripts, or tested for membership."""
    def names(node: ast.AST) -> list[str]:
        consts = [node] if isinstance(node, ast.Constant) else \
            list(node.elts) if isinstance(node, ast.Tuple | ast.List | ast.Set) else []
        return [c.value for c in consts if isinstance(c, ast.Constant)
                and c.value in SCHEME_NAMES]

    out = []
    for node in ast.walk(tree):
        found: list[str] = []
        if isinstance(node, ast.Compare):
            for part in (node.left, *node.comparators):
                found += names(part)
        elif isinstance(node, ast.Dict):
            for key in node.keys:
                found += names(key) if key is not None else []
        elif isinstance(node, ast.Subscript):
            found += names(node.slice)
        elif isinstance(node, ast.MatchValue):
            found += names(node.value)
        out += [(node.lineno, n) for n in found]
    return out


def test_no_code_outside_a_scheme_module_branches_on_its_name():
    """Only a scheme's own module may decide anything by a scheme's name; the rest reads the
    scheme's class (label, description, flags) or the results file."""
    found = []
    for module, path in _sources().items():
        if module.startswith("tsodso.coordination.schemes."):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [f"{path.relative_to(ROOT)}:{line}: {name!r}" for line, name in _name_uses(tree)]
    assert not found, "\n".join(found)


@pytest.mark.slow
def test_wheel_installs_one_top_level_package(tmp_path):
    """The wheel holds the namespace `tsodso` only (no generic top-level names such as
    `results` that a user's folder could shadow)."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("tsodso-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        top = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
        assert z.read(top).decode().split() == ["tsodso"]
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"tsodso"}
    for sub in ("core", "coordination", "coordination/schemes", "results", "simulators",
                "scenarios"):
        assert f"tsodso/{sub}/__init__.py" in names, sub
    assert "tsodso/scenarios/builtin/default.toml" in names


def test_a_local_results_folder_does_not_shadow_the_package(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "__init__.py").write_text("")
    (tmp_path / "results.py").write_text("raise SystemExit('shadowed')\n")
    code = "from tsodso import results; import tsodso.runner; print(results.compare.__name__)"
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "compare"


def test_cli_seed_limit_is_the_schemas():
    from tsodso.scenarios.schema import SEED_MAX as SCHEMA_SEED_MAX

    from tsodso.cli import SEED_MAX

    assert SEED_MAX == SCHEMA_SEED_MAX
