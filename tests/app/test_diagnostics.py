"""The running parts of the diagnostics: CUDA as the loaded torch sees it (and not checked
without torch), Qt's runtime version, and the window's model and engine (Auto with its pick)."""

import sys
from types import SimpleNamespace

import pytest
import torch

from app import diagnostics
from app.model.model_info import ModelInfo, ModelState
from app.model.settings import Settings


def test_cuda_is_reported_as_the_loaded_torch_sees_it(monkeypatch):
    cuda = dict(diagnostics.torch_runtime_rows())["CUDA"]
    if torch.cuda.is_available():
        assert cuda.startswith("available") and torch.cuda.get_device_name(0) in cuda
        assert f"cuda:{torch.cuda.device_count() - 1} " in cuda
    else:
        assert cuda.startswith("not available")
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not imported
    assert dict(diagnostics.torch_runtime_rows())["CUDA"].startswith("not checked")


def fake_torch(names, cuda="12.4", broken=False):
    def get_device_name(i):
        if broken:
            raise RuntimeError("CUDA error: no kernel image is available")
        return names[i]

    cuda_api = SimpleNamespace(
        is_available=lambda: bool(names),
        device_count=lambda: len(names),
        get_device_name=get_device_name,
    )
    mps = SimpleNamespace(is_available=lambda: False)
    return SimpleNamespace(
        cuda=cuda_api,
        version=SimpleNamespace(cuda=cuda, hip=None),
        backends=SimpleNamespace(mps=mps),
    )


def test_cuda_devices_are_named_in_order(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", fake_torch(["NVIDIA H200", "NVIDIA A100"]))
    cuda = dict(diagnostics.torch_runtime_rows())["CUDA"]
    assert cuda == "available, CUDA 12.4: cuda:0 NVIDIA H200, cuda:1 NVIDIA A100"
    monkeypatch.setitem(sys.modules, "torch", fake_torch(["x"], broken=True))
    assert "the devices cannot be read: CUDA error" in diagnostics.torch_runtime_rows()[0][1]
    monkeypatch.setitem(sys.modules, "torch", fake_torch([], cuda=None))
    assert diagnostics.torch_runtime_rows()[0][1] == "not available (a CPU-only torch)"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert dict(diagnostics.torch_runtime_rows())["MPS"] == "not available"


def test_qt_is_its_runtime_version():
    QtCore = pytest.importorskip("PySide6.QtCore", reason="Qt cannot load on this machine")
    rows = dict(diagnostics.qt_runtime_rows())
    assert rows["Qt"] == QtCore.qVersion()
    web = sys.modules.get("PySide6.QtWebEngineCore")
    if web is not None:  # loaded by tests/app/conftest.py where it can be
        assert rows["QtWebEngine"].endswith(f"Chromium {web.qWebEngineChromiumVersion()}")


def fake_window(engine: str, state=ModelState.READY, store=None):
    model = SimpleNamespace(
        state=state, info=ModelInfo(("geoclip", "hybrid"), "hybrid"), text="run: degree 8, on cpu"
    )
    return SimpleNamespace(
        settings=Settings(checkpoint="/runs/a", engine=engine),
        current_model=model,
        keeper=SimpleNamespace(store=store),
    )


def test_the_window_part_names_the_model_and_what_auto_picked(tmp_path):
    rows = dict(diagnostics.window_rows(fake_window("auto")))
    assert rows["Model"] == "/runs/a"
    assert rows["Model state"] == "ready: run: degree 8, on cpu"
    assert rows["Engine"] == "Auto: LocDiff-H (hybrid)"
    assert rows["Engines offered"] == "GeoCLIP, LocDiff-H (hybrid)"
    assert rows["Session file"].startswith("not kept on disk")
    store = SimpleNamespace(path=tmp_path / "mine.locdiff-session")
    rows = dict(diagnostics.window_rows(fake_window("locdiff", store=store)))
    assert rows["Engine"] == "LocDiffusion (not offered by this model)"
    assert rows["Session file"] == str(store.path)
    lines = diagnostics.window_text(fake_window("auto")).splitlines()
    assert next(line for line in lines if line.startswith("Model:")).split() == [
        "Model:",
        "/runs/a",
    ]
