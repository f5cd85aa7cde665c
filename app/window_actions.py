"""The main window's actions, menus and toolbar, as tables: (name, text, shortcut, tip).

Each action calls the window method of the same name (or, for those in :data:`ROUTES`, the
method of a window collaborator), so the menus, the toolbar and the shortcuts all reach one
place.
"""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QToolBar

Key = QKeySequence.StandardKey
ACTIONS = (
    ("open_photos", "Open photos…", Key.Open, "Add photos to the list"),
    ("open_folder", "Open folder…", "Ctrl+Shift+O", "Add every photo in a folder and below"),
    ("open_tracks", "Open track…", "Ctrl+T", "GPX, KML/KMZ, GeoJSON or CSV: place photos by time"),
    ("open_map_pack", "Open map pack…", None, "A region's offline map (.pmtiles, .mbtiles)"),
    ("close_map_pack", "Close map pack", None, "Back to the online tiles and the world map"),
    ("match_by_time", "Match photos by time", None, "Photos with GPS place those taken near them"),
    ("open_session", "Open session…", None, "Continue the work saved in a session file"),
    ("save_session_as", "Save session as…", None, "Keep this work in a session file of its own"),
    ("import_checkpoint", "Import checkpoint…", None, "Use a trained model"),
    ("download_model", "Download model…", None, "Fetch a model from the URL in Settings"),
    ("export_selected", "Export selected…", "Ctrl+E", "CSV, GeoJSON or GPX of the selection"),
    ("export_all", "Export all…", None, "CSV, GeoJSON or GPX of every predicted photo"),
    ("write_selected", "Write locations to photos…", "Ctrl+Shift+W", "Write confirmed locations"),
    ("write_all", "Write all confirmed locations…", None, "Write every confirmed location"),
    ("close", "Quit", Key.Quit, ""),
    ("undo_write", "Undo last write", None, "Put back the files of the last write"),
    ("accept_best", "Accept", "Ctrl+Return", "Confirm the places from tracks, or best guesses"),
    ("accept_all_proposed", "Accept all from tracks", None, "Confirm every place from a track"),
    ("set_coordinates", "Set coordinates…", "Ctrl+L", "Type the location of the selection"),
    ("clear_confirmation", "Clear confirmation", None, "Forget the confirmed locations"),
    ("remove_selected", "Remove from list", Key.Delete, "Close the selected photos"),
    ("edit_settings", "Settings…", Key.Preferences, "Model, sampling, map and writing"),
    ("predict_selected", "Predict selected", "Ctrl+P", "Predict where the selection was taken"),
    ("predict_all", "Predict all", "Ctrl+Shift+P", "Predict photos without a prediction or GPS"),
    ("cancel_prediction", "Cancel", "Esc", "Stop the prediction"),
)
MENUS = {
    "&File": "open_photos open_folder open_tracks | open_map_pack close_map_pack | "
    "open_session save_session_as | "
    "import_checkpoint download_model | "
    "export_selected export_all | write_selected write_all | close",
    "&Edit": "undo_write | accept_best accept_all_proposed set_coordinates clear_confirmation | "
    "match_by_time | remove_selected | "
    "edit_settings",
    "&Predict": "predict_selected predict_all cancel_prediction",
}
# Actions whose method is a window collaborator's (the attribute named), not the window's.
ROUTES = {"open_map_pack": "packs", "close_map_pack": "packs"}
TOOLBAR = (
    "open_photos open_folder open_tracks | predict_selected predict_all cancel_prediction | "
    "accept_best export_selected write_selected | edit_settings"
)


def build_actions(window: QMainWindow) -> dict[str, QAction]:
    """Create the actions, the menu bar and the toolbar of ``window``; returns the actions."""
    actions = {}
    for name, text, shortcut, tip in ACTIONS:
        action = QAction(text, window)
        action.triggered.connect(_caller(window, name))
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.setToolTip(tip or text)
        window.addAction(action)
        actions[name] = action
    for title, names in MENUS.items():
        _fill(window.menuBar().addMenu(title), names, actions)
    toolbar = QToolBar("Main", window)
    toolbar.setObjectName("main-toolbar")
    _fill(toolbar, TOOLBAR, actions)
    window.addToolBar(toolbar)
    return actions


def _caller(window: QMainWindow, name: str):
    """Calls the method when triggered (a collaborator of ROUTES may be made after the menus)."""
    if name not in ROUTES:
        method = getattr(window, name)
        return lambda _checked=False: method()
    return lambda _checked=False: getattr(getattr(window, ROUTES[name]), name)()


def _fill(target, names: str, actions: dict[str, QAction]) -> None:
    for name in names.split():
        if name == "|":
            target.addSeparator()
        else:
            target.addAction(actions[name])
