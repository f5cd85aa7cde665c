"""The architecture, checked: no import cycle among the project's modules (imports inside
functions and under ``TYPE_CHECKING`` included), the core and the app's model layer never import
Qt, the app's layers import only downward, and ``app.model`` works (distances included) with
PySide6 and torch unimportable."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("locdiff_core", "trainer", "app")

# What each app layer may import from the app (besides itself); the composition root (modules
# directly in app/) may import any of them.
APP_LAYERS = {
    "app.model": set(),
    "app.workers": {"app.model"},
    "app.widgets": {"app.model", "app.workers"},
    "app.map": {"app.model"},
}


def module_files() -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path
    return files


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    return {name: imports_of(name, path, known) for name, path in files.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def is_package_init(name: str, files: dict[str, Path]) -> bool:
    return files[name].name == "__init__.py"


def test_no_import_cycles():
    edges = graph()
    files = module_files()
    # A package's __init__ that re-exports its modules is not a cycle with them: importing a
    # submodule runs the package first by Python's rules, whatever the submodule imports.
    plain = {
        name: {t for t in targets if not (is_package_init(t, files) and name.startswith(t + "."))}
        for name, targets in edges.items()
    }
    assert cycles(plain) == []


def external_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_the_core_and_the_app_model_never_import_qt():
    files = module_files()
    offenders = [
        name
        for name, path in files.items()
        if (name.startswith("locdiff_core") or name.startswith("app.model"))
        and external_imports(path) & {"PySide6", "shiboken6", "pyqtgraph"}
    ]
    assert offenders == []


def test_the_core_never_imports_the_app_or_the_trainer():
    edges = graph()
    offenders = {
        name: sorted(t for t in targets if t.split(".")[0] in ("app", "trainer"))
        for name, targets in edges.items()
        if name.startswith("locdiff_core")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def layer_of(name: str) -> str | None:
    return next(
        (layer for layer in APP_LAYERS if name == layer or name.startswith(layer + ".")), None
    )


def test_the_app_layers_import_only_downward():
    wrong = {}
    for name, targets in graph().items():
        layer = layer_of(name)
        if layer is None:
            continue
        allowed = APP_LAYERS[layer] | {layer}
        bad = sorted(t for t in targets if t.startswith("app.") and layer_of(t) not in allowed)
        bad += sorted(t for t in targets if t == "app")
        if bad:
            wrong[name] = bad
    assert wrong == {}


def test_app_model_imports_without_qt_or_torch():
    code = (
        "import sys\n"
        "for blocked in ('PySide6', 'shiboken6', 'torch', 'open_clip', 'pyqtgraph'):\n"
        "    sys.modules[blocked] = None\n"
        "import pkgutil, importlib, app.model\n"
        "for info in pkgutil.iter_modules(app.model.__path__, 'app.model.'):\n"
        "    importlib.import_module(info.name)\n"
        "from app.model.session import Session, distance_km\n"
        "Session()\n"
        "assert round(distance_km((0.0, 0.0), (0.0, 90.0))) == 10008\n"  # a quarter of the equator
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_no_module_over_500_lines():
    """One concept per file: a module that outgrows 500 lines holds more than one."""
    long = {
        name: n
        for name, path in module_files().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 500
    }
    assert long == {}


def test_the_window_imports_without_torch():
    """The window opens before torch is loaded (about 2 s on two cores): the core's torch code
    is reached only from the workers, once a model is asked for."""
    code = (
        "import sys\n"
        "for blocked in ('torch', 'open_clip', 'torchvision'):\n"
        "    sys.modules[blocked] = None\n"
        "import app.main_window, app.main\n"
        "print('ok')\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
