"""installer/bundle_entry.py (the bundle's entry) and installer/locdiff.spec, without PyInstaller:
the entry runs the trainer as ``python -m`` would, and the spec, run with PyInstaller's names
stood in for, builds ``locdiff-app`` from files that exist."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALLER = ROOT / "installer"


def load_entry():
    spec = importlib.util.spec_from_file_location("bundle_entry", INSTALLER / "bundle_entry.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-m", "trainer", "embed", "--out", "x"], ("trainer", ["embed", "--out", "x"])),
        (["-u", "-m", "trainer", "train"], ("trainer", ["train"])),  # torchrun's workers
        (["-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "trainer"],
         ("torch.distributed.run", ["--nproc-per-node", "2", "-m", "trainer"])),
        (["photo.jpg"], None),
        (["--predict", "-m", "trainer"], None),
        (["-m", "os"], None),  # only the modules the app starts
        ([], None),
    ],
)  # fmt: skip
def test_module_command(argv, expected):
    assert load_entry().module_command(argv) == expected


def test_main_runs_the_trainer_as_python_m_would(monkeypatch, capsys):
    from locdiff_core import __version__

    entry = load_entry()
    monkeypatch.setattr(sys, "argv", ["locdiff-app", "-u", "-m", "trainer", "--version"])
    with pytest.raises(SystemExit) as stopped:
        entry.main()
    assert stopped.value.code == 0
    assert __version__ in capsys.readouterr().out


class _Recorder:
    """Stands in for one of PyInstaller's spec classes: keeps its arguments."""

    made: dict

    def __init__(self, kind):
        self.kind = kind

    def __call__(self, *args, **kwargs):
        self.made[self.kind] = (args, kwargs)
        return types.SimpleNamespace(pure=[], scripts=[], binaries=[], datas=[])


def run_spec(monkeypatch) -> dict:
    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.collect_data_files = lambda package, **_: [("data", package)]
    hooks.copy_metadata = lambda name: [("metadata", name)]
    hooks.collect_submodules = lambda package: [package]
    for name in ("PyInstaller", "PyInstaller.utils"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", hooks)
    made: dict = {}
    _Recorder.made = made
    names = {k: _Recorder(k) for k in ("Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE")}
    path = INSTALLER / "locdiff.spec"
    code = compile(path.read_text(encoding="utf-8"), str(path), "exec")
    exec(code, {"SPECPATH": str(INSTALLER), "__name__": "__main__", **names})
    return made


def test_the_spec_builds_locdiff_app_from_files_that_exist(monkeypatch):
    made = run_spec(monkeypatch)
    (scripts,), analysis = made["Analysis"]
    (entry,) = scripts
    assert Path(entry) == INSTALLER / "bundle_entry.py"
    files = [item for item in analysis["datas"] if item[0] not in ("data", "metadata")]
    assert files, "the basemap files and the README are listed by path"
    for source, _dest in files:
        assert Path(source).is_file(), source
    collected = {item[1] for item in analysis["datas"] if item[0] == "data"}
    assert {"app", "locdiff_resources", "xstatic.pkg.leaflet", "reverse_geocode", "geoclip",
            "open_clip", "pyqtgraph"} <= collected  # fmt: skip
    assert {("metadata", "geoclip"), ("metadata", "basemap-data")} <= set(analysis["datas"])
    assert "xstatic.pkg.leaflet_markercluster" in analysis["hiddenimports"]
    exe = made["EXE"][1]
    assert exe["name"] == "locdiff-app"  # desktop_integration looks for it beside sys.executable
    assert Path(exe["icon"]).is_file()
    assert made["COLLECT"][1]["name"] == "locdiff-app"
