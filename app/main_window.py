"""The main window: photo list, map and details around one session, with the workers behind it.

Layout: a "Photos" tab (list | map and density | model panel and details) and a "Trainer" tab;
menus and a toolbar for opening, predicting (with the engine choice), correcting, exporting and
writing; a status bar with counts, the model and the progress of a prediction (ETA, Cancel).
Every slow thing runs in the background (:mod:`app.workers.loaders`,
:mod:`app.workers.prediction`, the weights download of :mod:`app.downloads`); session
changes are gathered and pushed to
the map at most every :data:`REFRESH_MS`, so a thousand results do not mean a thousand redraws.
"""

from __future__ import annotations

import dataclasses
import gc
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from PySide6.QtCore import Qt, QThreadPool, QTimer
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QSplitter,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from app.downloads import WeightsDownload, download_model
from app.map.map_panel import MapPanel
from app.model.coordinates import format_decimal
from app.model.model_info import NO_MODEL, ModelInfo, ModelState, unavailable_reason
from app.model.session import PhotoPrediction, PhotoState, Session, place_key
from app.model.settings import Settings, load_settings, save_settings
from app.outputs import Outputs
from app.widgets.details_panel import DetailsPanel
from app.widgets.dialogs import Prompts
from app.widgets.engine_box import EngineBox
from app.widgets.model_panel import ModelPanel
from app.widgets.photo_list import PhotoListView, PhotoTableModel
from app.widgets.progress import ProgressStatus
from app.widgets.trainer_tab import TrainerTab
from app.window_actions import build_actions
from app.workers.loaders import (
    ExifReader,
    ExifResult,
    PhotoFinder,
    PlaceNamer,
    TaskSet,
    ThumbnailLoader,
)
from app.workers.prediction import PredictionController

TITLE = "LocDiff Studio"
REFRESH_MS = 100
PINS_MS = 300  # the map redraws every pin on a push: at most this often
PINS_BUSY_MS = 3000  # and this often while predictions stream in (the list shows each at once)
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
        self.prompts = Prompts(self)
        self.notices: list[str] = []  # every message shown in the status bar, oldest first
        self.model_state = ModelState.MISSING
        self.model_info: ModelInfo = NO_MODEL  # the loaded model's engines, or what to fetch
        self._selected: list[str] = []
        self._current: str | None = None
        self._jobs: dict[int, list[str]] = {}
        self.tasks = TaskSet(self)
        self.outputs = Outputs(self)
        self._changed_rows: set[int] | None = set()
        self._asked_places: set[tuple[float, float]] = set()
        self._fit_next = True  # the next selection change fits the map (not after a pin click)
        self._fit_pending = False  # the selection was fitted before any of it had a pin

        self.finder = PhotoFinder(self)
        self.finder.found.connect(self._found)
        self.finder.finished.connect(self._find_finished)
        self._added: dict[int, int] = {}  # finder request -> new photos so far
        self.thumbnails = ThumbnailLoader(THUMB_PX, parent=self)
        self.exif_reader = ExifReader(self)
        self.exif_reader.read.connect(self._exif_read)
        self.places = PlaceNamer(self)
        self.places.found.connect(self.session.set_places)
        self.places.warm_up()
        self.predictor = PredictionController(pipeline_factory, self)
        worker = self.predictor.worker
        worker.model_info.connect(self._model_info)
        worker.model_status.connect(self._model_status)
        worker.progress.connect(self._predict_progress)
        worker.predicted.connect(self._predicted)
        worker.failed.connect(self._predict_failed)
        worker.finished.connect(self._predict_finished)
        worker.warmed.connect(self._warmed)

        self.table_model = PhotoTableModel(self.session, self.thumbnails, self)
        self.photo_list = PhotoListView(self.table_model, self)
        self.photo_list.selection_changed.connect(self._selection_changed)
        self.details = DetailsPanel(self.session, self)
        self.map_panel = MapPanel(self.session, settings.tile_url, self)
        self.map = self.map_panel.map
        self.map.pinClicked.connect(self._pin_clicked)
        self.map.pinMoved.connect(self._pin_moved)
        self.map.locationRequested.connect(self._location_requested)
        self.model_panel = ModelPanel(self)
        self.weights_download = WeightsDownload(
            self.tasks, self.model_panel, self.notify, self.report_failure, self._weights_arrived
        )
        self.trainer_tab = TrainerTab(self)
        self._build_layout()
        self.menu_actions = build_actions(self)
        self.engine_box = EngineBox(self)
        self._add_engine_box()
        self._connect_panels()

        self._refresh_timer = QTimer(self, singleShot=True, interval=REFRESH_MS)
        self._refresh_timer.timeout.connect(self._refresh)
        self._pins: list = []  # what the map shows
        self._pins_pushed_at = 0.0
        self._pins_timer = QTimer(self, singleShot=True)
        self._pins_timer.timeout.connect(self._push_pins)
        self.session.listeners.append(self)
        self.setAcceptDrops(True)
        self.resize(1400, 860)
        if settings_message:
            self.notify(settings_message)
        self.load_model()

    # -- layout and actions --------------------------------------------------------------------
    def _build_layout(self) -> None:
        right = QWidget(self)
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.model_panel)
        column.addWidget(self.details, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.photo_list)
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

    def _add_engine_box(self) -> None:
        """The engine choice goes in the toolbar, after the predict actions."""
        toolbar = self.findChild(QToolBar, "main-toolbar")
        before = self.menu_actions["accept_best"]
        toolbar.insertWidget(before, self.engine_box)
        toolbar.insertSeparator(before)
        self.engine_box.chosen.connect(self.choose_engine)
        self.engine_box.show_choices(self.settings.engine, self.model_info)

    def _connect_panels(self) -> None:
        self.details.accept_requested.connect(self.accept_best)
        self.details.coordinates_requested.connect(self.set_coordinates)
        self.details.clear_requested.connect(self.clear_confirmation)
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
        self.notices.append(text)
        self.statusBar().showMessage(text, 15_000)

    # -- opening photos ----------------------------------------------------------------------
    def add_paths(self, paths: Iterable[str | Path]) -> int:
        """Add photos and folders (recursive), duplicates ignored. Folders are walked in the
        background and their photos appear as they are found; returns the request's number,
        0 for no paths (``finder.idle`` tells when every request has arrived)."""
        paths = list(paths)
        if not paths:
            return 0
        request = self.finder.request(paths)
        if request:
            self._added[request] = 0
        return request

    def _found(self, request: int, found: list) -> None:
        if self.finder.stopped:  # delivered after shutdown: the window is closing
            return
        new = self.session.add_found(found)
        self.exif_reader.request([(p.key, str(p.path)) for p in new])
        self._added[request] = self._added.get(request, 0) + len(new)
        if new and not self._selected:
            self.photo_list.select_keys([new[0].key])

    def _find_finished(self, request: int, count: int) -> None:
        added = self._added.pop(request, 0)
        if added:
            self.notify(f"added {added} photo{'s' * (added != 1)}")
        elif count:
            self.notify("no new photos: they are all in the list already")
        else:
            self.notify("no photos found there")

    def open_photos(self) -> None:
        self.add_paths(self.prompts.open_photos())

    def open_folder(self) -> None:
        folder = self.prompts.open_folder()
        if folder:
            self.add_paths([folder])

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt API)
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    dragMoveEvent = dragEnterEvent  # noqa: N815

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)

    def _exif_read(self, results: list[ExifResult]) -> None:
        for r in results:
            self.session.set_exif(r.key, r.position, error=r.error, unusable=r.unusable)

    def remove_selected(self) -> None:
        self.session.remove(self._selected)

    def loading_done(self) -> bool:
        """Every photo dropped is found, its EXIF read, every thumbnail asked for has arrived,
        and the views
        show it all (no refresh pending)."""
        return (
            not self._refresh_timer.isActive()
            and not self._pins_timer.isActive()
            and self.finder.idle
            and self.exif_reader.idle
            and self.thumbnails.idle
            and self.details.loader.idle
            and self.places.idle
            and all(p.exif_read for p in self.session.photos)
        )

    # -- session listener: gather changes, push them to map, details and status ----------------
    def photos_about_to_be_added(self, first: int, last: int) -> None:
        pass

    def photos_added(self) -> None:
        self._changed_rows = None
        self._refresh_timer.start()

    def photos_changed(self, rows: Sequence[int] | None) -> None:
        if rows is None:
            self._changed_rows = None
        elif self._changed_rows is not None:
            self._changed_rows.update(rows)
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def photos_about_to_be_reset(self) -> None:
        pass

    def photos_reset(self) -> None:
        self.photos_added()

    def _refresh(self) -> None:
        rows, self._changed_rows = self._changed_rows, set()
        photos = (
            self.session.photos
            if rows is None
            else [self.session.photos[r] for r in rows if r < len(self.session)]
        )
        self._ask_places(photos)
        self._push_pins()
        current = None if self._current is None else self.session.photo(self._current)
        if current is not None and (rows is None or self.session.row_of(current.key) in rows):
            self.details.refresh()
            self.map_panel.show_photo(self._current)
        self._show_counts()

    def _push_pins(self) -> None:
        """Send the pins to the map when they changed, at most every :data:`PINS_MS`, or
        :data:`PINS_BUSY_MS` while predicting: the page redraws every pin on a push, and with
        the offscreen compositor that drawing stalled the window by 100-250 ms (measured)."""
        interval = PINS_BUSY_MS if self.predictor.busy else PINS_MS
        wait = interval / 1000 - (time.monotonic() - self._pins_pushed_at)
        if wait > 0:
            if not self._pins_timer.isActive():
                self._pins_timer.start(max(1, round(wait * 1000)))
            return
        pins = self.session.pins()
        if pins != self._pins:
            self._pins, self._pins_pushed_at = pins, time.monotonic()
            self.map.set_photos(pins)
            if self._fit_pending and any(p.key in self._selected for p in pins):
                self._fit_pending = False  # the selection's pins arrived after it: fit now
                self.map.set_selection(self._selected, fit=True)

    def _warmed(self) -> None:
        """The model side is imported: show distances (they need it), and move the objects of
        the start-up (torch's, Qt's) out of the garbage collector's way: a full collection
        over them held the GIL for 200-400 ms (measured), a stall of the window each time."""
        gc.freeze()
        self.details.refresh()
        self.map_panel.warm_up()

    def _ask_places(self, photos) -> None:
        todo = [
            p
            for p in self.session.unnamed_points(photos)
            if place_key(*p) not in self._asked_places
        ]
        self._asked_places.update(place_key(*p) for p in todo)
        self.places.request(todo)

    def _show_counts(self) -> None:
        states = [p.state for p in self.session.photos]
        parts = [f"{len(states)} photos"]
        for state, name in (
            (PhotoState.EXIF, "with EXIF"),
            (PhotoState.PREDICTED, "predicted"),
            (PhotoState.CONFIRMED, "confirmed"),
            (PhotoState.ERROR, "error" if states.count(PhotoState.ERROR) == 1 else "errors"),
        ):
            count = states.count(state)
            if count:
                parts.append(f"{count} {name}")
        self.counts.setText(" · ".join(parts))

    # -- selection and the map ------------------------------------------------------------------
    def _selection_changed(self, keys: list[str], current: str | None) -> None:
        self._selected, self._current = keys, current
        fit, self._fit_next = self._fit_next, True
        self.details.show_photo(current, len(keys))
        self.map.set_selection(keys, fit=fit)
        located = {p.key for p in self._pins}
        self._fit_pending = fit and not any(k in located for k in keys)
        self.map_panel.show_photo(current)

    def _pin_clicked(self, key: str) -> None:
        self._fit_next = False  # the user is looking at that pin: do not move the map
        self.photo_list.select_keys([key])

    def _pin_moved(self, key: str, lat: float, lon: float) -> None:
        self.session.confirm(key, lat, lon)

    def _location_requested(self, lat: float, lon: float) -> None:
        if self._current is None:
            self.notify("select a photo first, then right-click the map to set its location")
            return
        self.session.confirm(self._current, lat, lon)

    # -- corrections -----------------------------------------------------------------------------
    def accept_best(self) -> None:
        done = self.session.accept_best(self._selected)
        if not done:
            self.notify("no prediction to accept: predict the selected photos first")

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
            for key in self._selected:
                self.session.confirm(key, *answer)

    def clear_confirmation(self) -> None:
        self.session.clear_confirmation(self._selected)

    # -- model ---------------------------------------------------------------------------------
    def load_model(self) -> None:
        """Load the settings' model in the worker (without a checkpoint: GeoCLIP, when the
        image encoder's weights are on disk)."""
        what = self.settings.checkpoint or "GeoCLIP (looking for the image encoder's weights)"
        self._model_status(ModelState.LOADING, f"loading {what}…")
        self.predictor.load_model(self.settings)

    def _model_info(self, info: ModelInfo) -> None:
        self.model_info = info
        self.engine_box.show_choices(self.settings.engine, info)

    def _model_status(self, state: str, text: str) -> None:
        self.model_state = state = ModelState(state)
        self.model_panel.set_state(state, text, self.model_info)
        labels = {ModelState.READY: f"Model: {text}", ModelState.LOADING: "Loading the model…"}
        self.model_label.setText(labels.get(state, "No model"))

    def import_checkpoint(self) -> None:
        path = self.prompts.open_checkpoint()
        if path:
            self.apply_settings(dataclasses.replace(self.settings, checkpoint=path))

    def download_model(self) -> None:
        download_model(self, self)

    def get_encoder_weights(self) -> None:
        """Download the image-encoder weights the model lacks (on the first run: the pretrained
        model's), after asking; the model loads once they are in place."""
        wanted = self.model_info.wanted
        if wanted is None:
            self.notify("no encoder weights to download: the model panel says what is missing")
            return
        self.weights_download.start(wanted, self.prompts)

    def _weights_arrived(self, _path: Path) -> None:
        self.load_model()

    def choose_engine(self, engine: str) -> None:
        """Predict with ``engine`` (a Settings.engine value) from now on."""
        if engine != self.settings.engine:
            self.apply_settings(dataclasses.replace(self.settings, engine=engine))
        reason = unavailable_reason(engine, self.model_info)
        if self.model_state is ModelState.READY and reason:
            self.notify(reason)

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
        self.engine_box.show_choices(new.engine, self.model_info)
        model_fields = ("checkpoint", "encoder_weights", "device")
        if (
            any(getattr(new, f) != getattr(old, f) for f in model_fields)
            or self.model_state is not ModelState.READY
        ):
            self.load_model()

    # -- prediction ------------------------------------------------------------------------------
    def predict_selected(self) -> None:
        self.predict(self._selected)

    def predict_all(self) -> None:
        self.predict([p.key for p in self.session.photos if p.prediction is None])

    def predict(self, keys: Sequence[str]) -> int | None:
        """Queue a prediction of these photos; returns the job id (None when nothing started)."""
        if self.model_state.unusable:
            self.notify(
                "no model to predict with: get the pretrained model, import a checkpoint, "
                "train one, or download weights"
            )
            return None
        reason = unavailable_reason(self.settings.engine, self.model_info)
        if self.model_state is ModelState.READY and reason:
            self.notify(reason)
            return None
        photos = [self.session.photo(k) for k in keys]
        todo = [p for p in photos if p is not None and not p.queued and not p.load_error]
        if not todo:
            self.notify("nothing to predict: select photos that can be read")
            return None
        job = self.predictor.predict([(p.key, str(p.path)) for p in todo], self.settings)
        self._jobs[job] = [p.key for p in todo]
        self.session.set_queued(self._jobs[job], True)
        self.progress.start(f"predicting {len(todo)} photo{'s' * (len(todo) != 1)}…")
        return job

    def cancel_prediction(self) -> None:
        if self.predictor.busy:
            self.predictor.cancel()
            self.progress.label.setText("cancelling…")
            self.progress.cancel.setEnabled(False)

    def _predict_progress(self, job: int, fraction: float, text: str) -> None:
        if job == max(self._jobs, default=None):
            self.progress.set_progress(fraction, f"predicting: {text}")

    def _predicted(self, _job: int, key: str, prediction: PhotoPrediction) -> None:
        self.session.set_prediction(key, prediction)

    def _predict_failed(self, _job: int, key: str, message: str) -> None:
        self.session.set_predict_error(key, message)

    def _predict_finished(self, job: int, outcome: str, message: str) -> None:
        self.session.set_queued(self._jobs.pop(job, []), False)
        self.notify(message if outcome != "failed" else f"prediction failed: {message}")
        if not self.predictor.busy:
            self.progress.finish()

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

    def reread_exif(self, keys: Iterable[str]) -> None:
        photos = [self.session.photo(k) for k in keys]
        self.exif_reader.request([(p.key, str(p.path)) for p in photos if p is not None])

    def report_failure(self, title: str, message: str) -> None:
        self.notify(f"{title}: {message}")
        self.prompts.error(title, message)

    # -- shutting down -----------------------------------------------------------------------
    def closeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the workers (waits for the running chunk); safe to call twice."""
        self._refresh_timer.stop()
        self._pins_timer.stop()
        self.tasks.cancel_all()
        if self in self.session.listeners:
            self.session.listeners.remove(self)
        self.predictor.shutdown()
        self.trainer_tab.shutdown()
        loaders = [self.finder, self.thumbnails, self.exif_reader, self.places, self.details.loader]
        for loader in loaders:
            loader.stop()
        pools = [self.finder.pool, self.thumbnails.pool, self.exif_reader.pool, self.places.pool]
        for pool in [*pools, self.details.loader.pool, QThreadPool.globalInstance()]:
            pool.clear()
            pool.waitForDone(30_000)
