"""The main window: photo list, map and details around one session, with the workers behind it.

Layout: a "Photos" tab (list | map and density | model panel and details) and a "Trainer" tab;
menus and a toolbar for opening, predicting (with the engine choice), correcting, exporting and
writing; a status bar with counts, the model and the progress of a prediction (ETA, Cancel).

The window is the composition root: it builds the widgets and the workers and hands each
collaborator what it uses: :class:`app.photo_intake.PhotoIntake` (opening and dropping photos,
their EXIF), :class:`app.session_views.SessionViews` (the selection, and session changes pushed
to the map, the details and the counts, coalesced), :class:`app.current_model.CurrentModel` (the
model, its state and the engine choice), :class:`app.prediction_jobs.PredictionJobs`
(predictions and their progress), :class:`app.outputs.Outputs` (exports and writes) and
:mod:`app.downloads`. Each action of :mod:`app.window_actions` calls the window method of its
name, most of which hand on to one of these. Every slow thing runs in the background.
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Iterable, Sequence
from pathlib import Path

from PySide6.QtCore import Qt, QThreadPool
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QPushButton,
    QSplitter,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app.action_states import ActionStates
from app.current_model import CurrentModel
from app.downloads import WeightsDownload, download_model
from app.edit_history import EditHistory, photos
from app.help_menu import add_help_menu
from app.map.map_panel import MapPanel
from app.map_packs import MapPacks
from app.model.coordinates import format_decimal
from app.model.model_info import ModelInfo, ModelState
from app.model.session import Session
from app.model.settings import Settings, load_settings, save_settings
from app.model.wording import sentence
from app.outputs import Outputs
from app.photo_intake import PhotoIntake
from app.prediction_jobs import PredictionJobs
from app.session_keeper import SessionKeeper, unwritten
from app.session_views import SessionViews
from app.track_geotag import TrackGeotag
from app.widgets.details_panel import DetailsPanel
from app.widgets.dialogs import Prompts
from app.widgets.engine_box import EngineBox
from app.widgets.model_panel import ModelPanel
from app.widgets.photo_list import PhotoListView, PhotoTableModel
from app.widgets.place_search_box import PlaceSearchBox
from app.widgets.progress import ProgressStatus
from app.widgets.tracks_panel import TracksPanel
from app.widgets.trainer_tab import TrainerTab
from app.window_actions import build_actions
from app.workers.loaders import PlaceNamer, TaskSet, ThumbnailLoader
from app.workers.place_lookup import PlaceLookup
from app.workers.prediction import PredictionController

TITLE = "LocDiff Studio"
THUMB_PX = 48


class MainWindow(QMainWindow):
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        settings_message: str | None = None,
        pipeline_factory=None,
    ) -> None:
        super().__init__()
        self.setWindowTitle(TITLE)
        if settings is None:
            settings, settings_message = load_settings()
        self.settings = settings
        self.session = Session()
        self._quitting = False  # a write asked for on quit is running: close once it is done
        self.edits = EditHistory(self.session, self)
        self.prompts = Prompts(self)
        self.notices: list[str] = []  # every message shown in the status bar, oldest first
        self.tasks = TaskSet(self)
        self.outputs = Outputs(self)

        self.intake = PhotoIntake(self, parent=self)
        self.finder, self.exif_reader = self.intake.finder, self.intake.exif_reader
        self.thumbnails = ThumbnailLoader(THUMB_PX, parent=self)
        self.places = PlaceNamer(self)
        self.places.found.connect(self.session.set_places)
        self.places.warm_up()
        self.predictor = PredictionController(pipeline_factory, self)
        self.predictor.worker.warmed.connect(self._warmed)
        self.current_model = CurrentModel(self, parent=self)
        self.predictions = PredictionJobs(self, parent=self)

        self.table_model = PhotoTableModel(self.session, self.thumbnails, self)
        self.photo_list = PhotoListView(self.table_model, self)
        self.details = DetailsPanel(self.session, self)
        self.map_panel = MapPanel(self.session, settings.tile_url, self)
        self.map = self.map_panel.map
        self.tracks_panel = TracksPanel(parent=self)
        self.views = SessionViews(self, parent=self)
        self.geotag = TrackGeotag(self, parent=self)
        self.place_lookup = PlaceLookup(self)
        self.place_search = PlaceSearchBox(self.place_lookup, self)
        self.place_here = QPushButton("Set location here", self)
        self.found_place: tuple[float, float, str] | None = None
        self.model_panel = ModelPanel(self)
        self.weights_download = WeightsDownload(
            self.tasks, self.model_panel, self.notify, self.report_failure, self._weights_arrived
        )
        self.trainer_tab = TrainerTab(self)
        self._build_layout()
        self.menu_actions = build_actions(self)
        self._add_undo_actions()
        self.help_actions = add_help_menu(self, self.menu_actions)
        self.engine_box = EngineBox(self)
        self._add_engine_box()
        self._connect_panels()
        self.packs = MapPacks(self, parent=self)  # reopens the last map pack
        self.action_states = ActionStates(self, parent=self)

        self.session.listeners.append(self.views)
        self.keeper = SessionKeeper(self, parent=self)  # restores the last session
        self.setAcceptDrops(True)
        self.resize(1400, 860)
        if settings_message:
            self.notify(settings_message)
        self.load_model()

    # -- what the collaborators keep, as the window's ---------------------------------------
    @property
    def model_state(self) -> ModelState:
        return self.current_model.state

    @property
    def model_info(self) -> ModelInfo:
        """The loaded model's engines, or what to fetch."""
        return self.current_model.info

    @property
    def _selected(self) -> list[str]:
        return self.views.selected

    @property
    def _current(self) -> str | None:
        return self.views.current

    # -- layout and actions --------------------------------------------------------------------
    def _build_layout(self) -> None:
        right = QWidget(self)
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.model_panel)
        column.addWidget(self.details, 1)
        left = QSplitter(Qt.Orientation.Vertical, self)
        left.addWidget(self.photo_list)
        left.addWidget(self.tracks_panel)
        left.setStretchFactor(0, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(left)
        splitter.addWidget(self.map_panel)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([470, 590, 340])
        self.tabs = QTabWidget(self)
        self.tabs.addTab(splitter, "Photos")
        self.tabs.addTab(self.trainer_tab, "Trainer")
        self.setCentralWidget(self.tabs)
        self.progress = ProgressStatus(self)  # the prediction's, with Cancel
        self.progress.cancel_requested.connect(self.cancel_prediction)
        self.write_progress = ProgressStatus(self)  # GPS writes (not cancellable), beside it
        self.write_progress.cancel.hide()
        self.counts = QLabel(self)
        self.counts.setMinimumWidth(330)  # fixed widths: a new count must not relayout the window
        self.model_label = QLabel(self)
        bar = self.statusBar()
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.write_progress)
        bar.addPermanentWidget(self.counts)
        bar.addPermanentWidget(self.model_label)

    def _add_undo_actions(self) -> None:
        """Undo and Redo of location edits, named after the edit, at the top of Edit."""
        undo = self.edits.stack.createUndoAction(self, "Undo")
        redo = self.edits.stack.createRedoAction(self, "Redo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo.setShortcut(QKeySequence.StandardKey.Redo)
        edit_menu = next(a.menu() for a in self.menuBar().actions() if a.text() == "&Edit")
        first = edit_menu.actions()[0]
        edit_menu.insertActions(first, [undo, redo])
        edit_menu.insertSeparator(first)
        self.menu_actions["undo"], self.menu_actions["redo"] = undo, redo

    def _add_engine_box(self) -> None:
        """The engine choice goes in the toolbar, after the predict actions."""
        toolbar = self.findChild(QToolBar, "main-toolbar")
        before = self.menu_actions["accept_best"]
        toolbar.insertWidget(before, self.engine_box)
        toolbar.insertSeparator(before)
        self.engine_box.chosen.connect(self.choose_engine)
        self.engine_box.show_choices(self.settings.engine, self.model_info)

    def _connect_panels(self) -> None:
        self.place_search.setMinimumWidth(220)
        self.place_here.setEnabled(False)
        self.place_here.setToolTip("Put the selected photos at the place found")
        self.map_panel.bar.addWidget(self.place_search)
        self.map_panel.bar.addWidget(self.place_here)
        self.place_search.place_chosen.connect(self.show_place)
        self.place_here.clicked.connect(self.place_selected_at_found)
        self.details.accept_requested.connect(self.accept_best)
        self.details.coordinates_requested.connect(self.set_coordinates)
        self.details.clear_requested.connect(self.clear_confirmation)
        self.details.candidate_accept_requested.connect(self.accept_candidate)
        self.map.candidateClicked.connect(self.details.show_candidate)
        self.model_panel.import_requested.connect(self.import_checkpoint)
        self.model_panel.train_requested.connect(
            lambda: self.tabs.setCurrentWidget(self.trainer_tab)
        )
        self.model_panel.download_requested.connect(self.download_model)
        self.trainer_tab.checkpoint_chosen.connect(
            lambda run: self.apply_settings(dataclasses.replace(self.settings, checkpoint=run))
        )
        self.model_panel.weights_requested.connect(self.get_encoder_weights)

    def notify(self, text: str) -> None:
        text = sentence(text)
        self.notices.append(text)
        self.statusBar().showMessage(text, 15_000)

    def report_failure(self, title: str, message: str) -> None:
        self.notify(f"{title}: {message}")
        self.prompts.error(title, message)

    # -- opening photos (app.photo_intake) ------------------------------------------------------
    def add_paths(self, paths: Iterable[str | Path]) -> int:
        """Add photos and folders (:meth:`app.photo_intake.PhotoIntake.add_paths`)."""
        return self.intake.add_paths(paths)

    def open_photos(self) -> None:
        self.intake.open_photos()

    def open_folder(self) -> None:
        self.intake.open_folder()

    # -- geotagging by time (app.track_geotag) --------------------------------------------------
    def open_tracks(self) -> None:
        self.geotag.open_dialog()

    def open_track_files(self, paths: Sequence[str | Path]):
        """Read GPS tracks (:meth:`app.track_geotag.TrackGeotag.open`); returns the task."""
        return self.geotag.open(paths)

    def open_track_paths(self) -> list[str]:
        return [line.path for line in self.geotag.lines.values()]

    def match_by_time(self) -> None:
        self.geotag.start_matching()

    def accept_all_proposed(self) -> None:
        self.geotag.accept_all()

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt API)
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    dragMoveEvent = dragEnterEvent  # noqa: N815

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)

    def reread_exif(self, keys: Iterable[str]) -> None:
        self.intake.reread_exif(keys)

    def remove_selected(self) -> None:
        self.session.remove(self._selected)

    def loading_done(self) -> bool:
        """Every photo dropped is found, its EXIF read, every thumbnail asked for has arrived,
        and the views show it all (no refresh pending)."""
        return (
            self.views.idle
            and self.intake.idle
            and self.thumbnails.idle
            and self.details.loader.idle
            and self.places.idle
            and self.geotag.idle
            and all(p.exif_read for p in self.session.photos)
        )

    def _warmed(self) -> None:
        """The model side is imported: refresh the details, and move the objects of the
        start-up (torch's, Qt's) out of the garbage collector's way: a full collection
        over them held the GIL for 200-400 ms (measured), a stall of the window each time."""
        gc.freeze()
        self.details.refresh()
        self.map_panel.warm_up()

    # -- the place search ----------------------------------------------------------------------
    def show_place(self, lat: float, lon: float, label: str) -> None:
        """Go to a place found by name and mark it; *Set location here* puts the selection
        there (so does right-clicking the mark)."""
        self.found_place = (lat, lon, label)
        self.map.set_search_marker(lat, lon, label)
        self.map.fit_to([(lat, lon)], offline_zoom=10)
        self.place_here.setEnabled(True)
        self.place_here.setToolTip(f"Put the selected photos at {label}")

    def place_selected_at_found(self) -> None:
        if self.found_place is None:
            self.notify("search for a place first")
        elif not self._selected:
            self.notify("select the photos to place first")
        else:
            lat, lon, label = self.found_place
            count = len(self._selected)
            with self.edits.edit(f"Place {photos(count)} at {label}", self._selected):
                for key in self._selected:
                    self.session.confirm(key, lat, lon)
            self.notify(f"placed {count} photo{'s' * (count != 1)} at {label}")

    # -- corrections -----------------------------------------------------------------------------
    def accept_best(self) -> None:
        """Confirm the selection's places from tracks, and the best guesses of the rest."""
        with self.edits.edit(f"Accept {photos(len(self._selected))}", self._selected):
            done = self.session.accept_proposed(self._selected)
            rest = [k for k in self._selected if k not in done]
            done += self.session.accept_best(rest)
        if not done:
            self.notify("nothing to accept: predict the selected photos or open a GPS track")

    def accept_candidate(self, rank: int) -> None:
        """Confirm candidate ``rank`` (0 first) of the current photo's prediction."""
        photo = None if self._current is None else self.session.photo(self._current)
        pred = None if photo is None else photo.prediction
        if pred is None or not 0 <= rank < len(pred.candidates):
            self.notify("no such candidate: select a predicted photo")
            return
        lat, lon, _share = pred.candidates[rank]
        with self.edits.edit(f"Accept candidate #{rank + 1} for {photo.name}", [photo.key]):
            self.session.confirm(photo.key, lat, lon, source="a guess")

    def set_coordinates(self) -> None:
        if not self._selected:
            self.notify("select the photos to place first")
            return
        photo = self.session.photo(self._current or self._selected[0])
        loc = photo.location() if photo else None
        answer = self.prompts.coordinates(
            format_decimal(*loc[0]) if loc else "", len(self._selected)
        )
        if answer is not None:
            name = f"Set coordinates of {photos(len(self._selected))}"
            with self.edits.edit(name, self._selected):
                for key in self._selected:
                    self.session.confirm(key, *answer)

    def clear_confirmation(self) -> None:
        with self.edits.edit(f"Clear {photos(len(self._selected))}", self._selected):
            self.session.clear_confirmation(self._selected)

    # -- model and settings (app.current_model) -----------------------------------------------
    def load_model(self) -> None:
        self.current_model.load()

    def import_checkpoint(self) -> None:
        self.current_model.import_checkpoint()

    def download_model(self) -> None:
        download_model(self, self)

    def get_encoder_weights(self) -> None:
        self.current_model.get_encoder_weights()

    def _weights_arrived(self, _path: Path) -> None:
        self.load_model()

    def choose_engine(self, engine: str) -> None:
        self.current_model.choose_engine(engine)

    def edit_settings(self) -> None:
        new = self.prompts.settings(self.settings)
        if new is not None:
            self.apply_settings(new)

    def apply_settings(self, new: Settings) -> None:
        old, self.settings = self.settings, new
        try:
            save_settings(new)
        except (OSError, ValueError) as exc:
            self.prompts.error("Settings", f"the settings could not be saved: {exc}")
        if new.tile_url != old.tile_url:
            self.map.set_tile_url(new.tile_url or None)
        self.current_model.settings_changed(old, new)

    # -- prediction (app.prediction_jobs) ------------------------------------------------------
    def predict_selected(self) -> None:
        self.predict(self._selected)

    def predict_all(self) -> None:
        """Predict every photo without a prediction, except those whose file has GPS (select
        them and *Predict selected* to predict them anyway)."""
        todo = [p for p in self.session.photos if p.prediction is None]
        with_gps = sum(p.exif is not None for p in todo)
        self.predict([p.key for p in todo if p.exif is None])
        if with_gps:
            self.notify(
                f"left out {photos(with_gps)} that {'has' if with_gps == 1 else 'have'} GPS "
                "in the file: select and Predict selected to predict anyway"
            )

    def predict(self, keys: Sequence[str]) -> int | None:
        """Queue a prediction of these photos; returns the job id (None when nothing started)."""
        return self.predictions.predict(keys)

    def cancel_prediction(self) -> None:
        self.predictions.cancel()

    # -- export and write-back (app.outputs) -------------------------------------------------
    def export_selected(self) -> None:
        self.outputs.export_dialog(self._selected)

    def export_all(self) -> None:
        self.outputs.export_dialog(self.session.keys())

    def write_selected(self) -> None:
        self.outputs.write(self._selected)

    def write_all(self) -> None:
        self.outputs.write(self.session.keys())

    def undo_write(self) -> None:
        self.outputs.undo()

    # -- sessions (app.session_keeper) and shutting down ---------------------------------------
    def open_session(self) -> None:
        path = self.prompts.open_session()
        if path:
            self.keeper.open_file(path)

    def save_session_as(self) -> None:
        path = self.prompts.save_session()
        if path:
            self.keeper.save_as(path)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        """Quitting with confirmed locations not written asks: write them first, keep them
        in the session for the next start, or discard them."""
        pending = unwritten(self.session)
        if pending and not self._quitting:
            answer = self.prompts.unwritten(len(pending))
            if answer == "cancel":
                event.ignore()
                return
            if answer == "write":
                task = self.outputs.write(pending)
                if task is not None:
                    event.ignore()
                    self._quitting = True
                    task.done.connect(lambda _r: self.close())
                    task.failed.connect(lambda _m: setattr(self, "_quitting", False))
                    return
            elif answer == "discard":
                self.session.clear_confirmation(pending)
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the workers (waits for the running chunk); safe to call twice."""
        self.keeper.stop()
        self.packs.shutdown()
        self.action_states.stop()
        self.views.stop()
        self.geotag.stop()
        self.place_lookup.stop()
        self.tasks.cancel_all()
        self.predictor.shutdown()
        self.trainer_tab.shutdown()
        loaders = [self.finder, self.thumbnails, self.exif_reader, self.places, self.details.loader]
        for loader in loaders:
            loader.stop()
        pools = [self.finder.pool, self.thumbnails.pool, self.exif_reader.pool, self.places.pool]
        for pool in [*pools, self.details.loader.pool, QThreadPool.globalInstance()]:
            pool.clear()
            pool.waitForDone(30_000)
