"""The diagnostics summary of a running LocDiff Studio (*Help > About*, *Help > Copy
diagnostics*) and of an installation (``locdiff-app --version``): the rows of
:mod:`app.model.diagnostics` with what only a running Qt and torch know, and the window's model.

torch is never imported here: its CUDA devices are read only once the prediction worker has
imported it (the window starts that at once), so ``--version`` stays fast; without it the CUDA
row says it was not checked. Qt is loaded no further than ``QtCore`` (QtWebEngine's Chromium
version is read when the window has loaded QtWebEngine).
"""

from __future__ import annotations

import sys
from typing import Protocol

from app.model.diagnostics import Row, configured_model_rows, render, summary_rows
from app.model.model_info import (
    ModelInfo,
    ModelState,
    choice_label,
    engine_label,
    unavailable_reason,
)
from app.model.settings import Settings, load_settings


class ModelSide(Protocol):
    state: ModelState
    info: ModelInfo
    text: str


class SessionSide(Protocol):
    store: object | None  # a SessionStore (its ``path``), None when not kept on disk


class DiagnosedWindow(Protocol):
    """What the summary reads of the window."""

    settings: Settings
    current_model: ModelSide
    keeper: SessionSide


def torch_runtime_rows() -> list[Row]:
    """CUDA (and on macOS, MPS) as the loaded torch sees them."""
    if sys.modules.get("torch") is None:
        return [("CUDA", "not checked: torch is not loaded (the window's Help menu checks)")]
    import torch  # already imported; waits while the prediction worker is still importing it

    rows = [("CUDA", _cuda_text(torch))]
    if sys.platform == "darwin":
        available = torch.backends.mps.is_available()
        rows.append(("MPS", "available" if available else "not available"))
    return rows


def _cuda_text(torch) -> str:
    """Whether CUDA is available, its version and the devices (``cuda:0 NVIDIA …``)."""
    if not torch.cuda.is_available():
        built = torch.version.cuda and f"torch built for CUDA {torch.version.cuda}"
        return f"not available ({built or 'a CPU-only torch'})"
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else f"HIP {torch.version.hip}"
    try:
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except RuntimeError as exc:  # a driver that lists devices it cannot open
        return f"available, {build}, but the devices cannot be read: {exc}"
    devices = ", ".join(f"cuda:{i} {name}" for i, name in enumerate(names))
    return f"available, {build}: {devices}"


def qt_runtime_rows() -> list[Row]:
    """Qt's runtime version, the windowing platform once an application runs, and Chromium's
    version once QtWebEngine is loaded."""
    try:
        from PySide6 import QtCore
    except ImportError as exc:  # a broken Qt install is exactly what a report should show
        return [("Qt", f"cannot be loaded: {exc}")]
    rows = [("Qt", QtCore.qVersion())]
    app = QtCore.QCoreApplication.instance()
    gui = sys.modules.get("PySide6.QtGui")
    if app is not None and gui is not None and isinstance(app, gui.QGuiApplication):
        rows.append(("Qt platform", app.platformName()))
    web = sys.modules.get("PySide6.QtWebEngineCore")
    if web is not None and hasattr(web, "qWebEngineChromiumVersion"):
        rows.append(
            (
                "QtWebEngine",
                f"{web.qWebEngineVersion()}, Chromium {web.qWebEngineChromiumVersion()}",
            )
        )
    return rows


def _state_text(model: ModelSide) -> str:
    """``ready: <the model, on cpu>``; a message that starts with the state (``loading …``)
    as it is."""
    text = " ".join(model.text.split())
    if not text or text.startswith(model.state.value):
        return text or model.state.value
    return f"{model.state.value}: {text}"


def window_model_rows(window: DiagnosedWindow) -> list[Row]:
    """The model the window has (or is loading), the engines it offers and the engine chosen
    (Auto with what it picks)."""
    settings, model = window.settings, window.current_model
    engine = choice_label(settings.engine, model.info)
    if model.state is ModelState.READY and unavailable_reason(settings.engine, model.info):
        engine += " (not offered by this model)"
    offered = ", ".join(engine_label(e) for e in model.info.engines)
    return [
        ("Model", settings.checkpoint or "GeoCLIP (no checkpoint)"),
        ("Model state", _state_text(model)),
        ("Engines offered", offered or "none yet"),
        ("Engine", engine),
        ("Device", settings.device),
        ("Encoder weights", settings.encoder_weights or "the encoder weights cache"),
    ]


def window_rows(window: DiagnosedWindow) -> list[Row]:
    """The full summary of a running window."""
    store = window.keeper.store
    session = store.path if store is not None else "not kept on disk (the status bar said why)"
    return summary_rows(
        window_model_rows(window),
        torch_runtime=torch_runtime_rows(),
        qt_runtime=qt_runtime_rows(),
        session=session,
    )


def configured_rows() -> list[Row]:
    """The summary without a window: the model as the settings name it."""
    settings, message = load_settings()
    return summary_rows(
        configured_model_rows(settings, message),
        torch_runtime=torch_runtime_rows(),
        qt_runtime=qt_runtime_rows(),
    )


def configured_text() -> str:
    """What ``locdiff-app --version`` prints."""
    return render(configured_rows())


def window_text(window: DiagnosedWindow) -> str:
    """What *Help > Copy diagnostics* puts on the clipboard."""
    return render(window_rows(window))
