"""The Trainer tab: build an embedding dataset and train a model from the window, as child
processes (``locdiff embed``, ``torchrun ... -m trainer train``; see :mod:`app.model.training_job`),
with their output in a log pane and live curves read from the run's ``metrics.jsonl``.

Stop is graceful (a ``STOP`` file: every process finishes its step, saves and exits 0; the
dataset builder gets SIGTERM and a rerun resumes it); Kill ends the whole process tree at once
(the last checkpoint stays); Resume continues the run folder. When a job ends, the status says
how (:mod:`app.model.job_end`): where a stopped or killed run got to and which step Resume
continues from. "More options" is checked as it is typed (:mod:`app.model.extra_options`).
GPUs are counted by a short child process on the tab's first showing, so neither torch nor CUDA
loads in the GUI process.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6.QtCore import QProcess, QProcessEnvironment, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.model import training_job as job
from app.model.extra_options import option_problems, split_options
from app.model.job_end import JobProgress, job_end
from app.widgets.dialogs import PathField
from app.widgets.training_curves import TrainingCurves
from locdiff_core.run_layout import model_file

POLL_MS = 500
LOG_LINES = 5000
SHUTDOWN_WAIT_MS = 15_000


class TrainerTab(QWidget):
    checkpoint_chosen = Signal(str)  # "Use this model": the run folder, for the Photos side
    job_finished = Signal(str, int)  # "embed" / "train" / "resume", exit code (-1: crashed/killed)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.process: QProcess | None = None
        self.job_kind = ""
        self.gpu_count: int | None = None  # None until the probe answers
        self._probe: QProcess | None = None
        self._tail: job.MetricsTail | None = None
        self._run_dir: Path | None = None
        self._progress = JobProgress()
        self._stop_asked = self._kill_asked = False
        self._poll = QTimer(self, interval=POLL_MS)
        self._poll.timeout.connect(self.read_metrics)
        self._build()
        self._update_buttons()

    # -- layout --------------------------------------------------------------------------------
    def _build(self) -> None:
        form = QFormLayout()
        self.source = QComboBox(self)
        self.source.addItems(["Photo folder", "CSV and image folder"])
        self.photos = PathField("Folder of geotagged photos", parent=self)
        self.csv = PathField("Location CSV (IMG_ID,LAT,LON)", "CSV (*.csv);;All (*)", parent=self)
        self.images = PathField("Folder of the CSV's images", parent=self)
        self.model = QLineEdit("ViT-L-14", self)
        self.model.setToolTip("open_clip model name (ViT-L-14, ViT-B-32) or a model-config .json")
        self.pretrained = QLineEdit("openai", self)
        self.weights = PathField(
            "Encoder weights file", "Weights (*.safetensors *.bin *.pt)", parent=self
        )
        self.output = PathField("Output folder (dataset/ and run/ go inside)", parent=self)
        self.dataset = QLineEdit(self)
        self.dataset.setPlaceholderText("OUTPUT/dataset (built by Build dataset)")
        self.degree = self._spin(1, 200, 47)
        self.epochs = self._spin(0, 100000, 10)
        self.batch = self._spin(1, 1 << 20, 512)
        self.procs = self._spin(1, 1024, 1)
        self.device = QComboBox(self)
        self.device.addItems(["cpu", "cuda"])
        self.gpu_label = QLabel("GPUs: not counted yet", self)
        self.nodes = self._spin(1, 1024, 1)
        self.endpoint = QLineEdit(self)
        self.endpoint.setPlaceholderText(f"HOST0:{job.DEFAULT_PORT} (several machines only)")
        self.val_fraction = QDoubleSpinBox(self, decimals=3, minimum=0.0, maximum=0.5)
        self.val_fraction.setSingleStep(0.01)
        self.val_fraction.setValue(0.05)
        self.extra = QLineEdit(self)
        self.extra.setPlaceholderText("more `locdiff train` options, e.g. --widths 512,256")
        self.extra_problem = QLabel(self, wordWrap=True, visible=False)
        self.extra_problem.setStyleSheet("color: #b00020")
        self.extra.textChanged.connect(self._check_extra)
        self.val_fraction.valueChanged.connect(self._check_extra)
        extra_box = QVBoxLayout()
        extra_box.setContentsMargins(0, 0, 0, 0)
        extra_box.addWidget(self.extra)
        extra_box.addWidget(self.extra_problem)
        self.source.currentIndexChanged.connect(self._source_changed)
        device_row = QHBoxLayout()
        for widget in (self.procs, QLabel("processes per node on", self), self.device):
            device_row.addWidget(widget)
        device_row.addWidget(self.gpu_label, 1)
        rows = [
            ("Photos from", self.source), ("Photo folder", self.photos), ("CSV", self.csv),
            ("Image folder", self.images), ("Encoder model", self.model),
            ("Pretrained tag", self.pretrained), ("Encoder weights", self.weights),
            ("Output folder", self.output), ("Dataset", self.dataset), ("Degree L", self.degree),
            ("Epochs", self.epochs), ("Batch size (global)", self.batch), ("Processes", device_row),
            ("Nodes", self.nodes), ("Rendezvous endpoint", self.endpoint),
            ("Validation share", self.val_fraction), ("More options", extra_box),
        ]  # fmt: skip
        for label, widget in rows:
            form.addRow(label, widget)
        self.problems = QLabel(self)
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet("color: #b00020")
        self.buttons: dict[str, QPushButton] = {}
        actions = [
            ("Build dataset", self.build_dataset), ("Train", self.train),
            ("Stop", self.stop), ("Kill", self.kill), ("Resume", self.resume),
            ("Copy command", self.copy_command), ("Use this model", self.use_model),
        ]  # fmt: skip
        button_row = QHBoxLayout()
        for text, slot in actions:
            self.buttons[text] = button = QPushButton(text, self)
            button.clicked.connect(slot)
            button_row.addWidget(button)
        self.status = QLabel("Idle", self, wordWrap=True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.log = QPlainTextEdit(self, readOnly=True)
        self.log.setMaximumBlockCount(LOG_LINES)
        self.log.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.curves = TrainingCurves(self)

        left = QWidget(self)
        column = QVBoxLayout(left)
        column.addLayout(form)
        column.addWidget(self.problems)
        column.addLayout(button_row)
        column.addWidget(self.status)
        column.addWidget(self.log, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(left)
        splitter.addWidget(self.curves)
        splitter.setStretchFactor(1, 1)
        QVBoxLayout(self).addWidget(splitter)
        self._source_changed()

    def _spin(self, low: int, high: int, value: int) -> QSpinBox:
        spin = QSpinBox(self)
        spin.setRange(low, high)
        spin.setValue(value)
        return spin

    def _source_changed(self) -> None:
        csv = self.source.currentIndex() == 1
        self.photos.setEnabled(not csv)
        self.csv.setEnabled(csv)
        self.images.setEnabled(csv)

    # -- the spec ------------------------------------------------------------------------------
    def spec(self) -> job.TrainingSpec:
        """The form as a :class:`TrainingSpec`; ValueError for an unreadable "more options"."""
        csv = self.source.currentIndex() == 1
        return job.TrainingSpec(
            photos="" if csv else self.photos.text(),
            csv=self.csv.text() if csv else "",
            images=self.images.text() if csv else "",
            model=self.model.text().strip(),
            pretrained=self.pretrained.text().strip(),
            weights=self.weights.text(),
            output=self.output.text(),
            dataset=self.dataset.text().strip(),
            degree=self.degree.value(),
            epochs=self.epochs.value(),
            batch_size=self.batch.value(),
            num_procs=self.procs.value(),
            device=self.device.currentText(),
            num_nodes=self.nodes.value(),
            endpoint=self.endpoint.text().strip(),
            val_fraction=self.val_fraction.value(),
            extra_args=split_options(self.extra.text()),
        )

    def set_spec(self, spec: job.TrainingSpec) -> None:
        self.source.setCurrentIndex(1 if spec.csv else 0)
        for field, value in ((self.photos, spec.photos), (self.csv, spec.csv),
                             (self.images, spec.images), (self.weights, spec.weights),
                             (self.output, spec.output)):  # fmt: skip
            field.edit.setText(value)
        self.model.setText(spec.model)
        self.pretrained.setText(spec.pretrained)
        self.dataset.setText(spec.dataset)
        for spin, value in ((self.degree, spec.degree), (self.epochs, spec.epochs),
                            (self.batch, spec.batch_size), (self.procs, spec.num_procs),
                            (self.nodes, spec.num_nodes)):  # fmt: skip
            spin.setValue(value)
        self.device.setCurrentText(spec.device)
        self.endpoint.setText(spec.endpoint)
        self.val_fraction.setValue(spec.val_fraction)
        self.extra.setText(" ".join(job.shlex.quote(a) for a in spec.extra_args))

    def _check_extra(self) -> None:
        """Say under "More options", as the user types, what the trainer would refuse."""
        try:
            args = split_options(self.extra.text())
            problems = option_problems(args, val_fraction=self.val_fraction.value())
        except ValueError as exc:
            problems = [str(exc)]
        self.extra_problem.setText("\n".join(problems))
        self.extra_problem.setVisible(bool(problems))

    def _checked(self, problems_of) -> job.TrainingSpec | None:
        """The spec if ``problems_of(spec)`` finds nothing; else the problems are shown."""
        try:
            spec = self.spec()
            problems = problems_of(spec)
        except ValueError as exc:
            problems = [str(exc)]
        self.problems.setText("\n".join(f"• {p}" for p in problems))
        return None if problems else spec

    # -- GPU count -----------------------------------------------------------------------------
    def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        if self.gpu_count is None and self._probe is None:
            self.detect_gpus()

    def detect_gpus(self) -> None:
        """Ask a child Python how many CUDA devices there are (torch stays out of the GUI)."""
        self.gpu_count = None
        self._probe = probe = QProcess(self)
        probe.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        probe.finished.connect(self._gpus_counted)
        self.gpu_label.setText("GPUs: counting…")
        probe.start(sys.executable, ["-c", job.GPU_PROBE])

    def _gpus_counted(self) -> None:
        output = bytes(self._probe.readAll()).decode(errors="replace")
        self.gpu_count = count = job.parse_gpu_count(output)
        if count:
            self.gpu_label.setText(f"GPUs: {count} detected")
            self.device.setCurrentText("cuda")
            self.procs.setValue(count)
        else:
            self.gpu_label.setText(f"no GPU: CPU processes ({os.cpu_count()} cores)")
            self.device.setCurrentText("cpu")

    # -- jobs ----------------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    def build_dataset(self) -> None:
        spec = self._checked(job.embed_problems)
        if spec is not None:
            self._start("embed", job.embed_command(spec), None)

    def train(self) -> None:
        spec = self._checked(lambda s: job.train_problems(s, gpus=self.gpu_count))
        if spec is not None:
            self.curves.clear()
            self._start("train", job.train_command(spec), spec.run_dir)

    def resume(self) -> None:
        spec = self._checked(lambda s: job.train_problems(s, resume=True, gpus=self.gpu_count))
        if spec is not None:
            self._start("resume", job.train_command(spec, resume=True), spec.run_dir)

    def _start(self, kind: str, argv: list[str], run_dir: Path | None) -> None:
        if self.is_running():
            self.problems.setText(f"• a {self.job_kind} job is running: stop it first")
            return
        if run_dir is not None:
            try:
                run_dir.parent.mkdir(parents=True, exist_ok=True)
                (run_dir / job.STOP_FILE).unlink(missing_ok=True)  # a stale one stops it at once
            except OSError as exc:
                self.problems.setText(f"• {run_dir.parent}: cannot prepare it ({exc.strerror})")
                return
            tail = job.MetricsTail(run_dir / job.METRICS_FILE)
            if kind == "train":
                tail.read()  # a new run in an old folder: draw only what it adds
            else:
                self.curves.clear()
            self._tail, self._run_dir = tail, run_dir
        self.job_kind = kind
        self._progress = JobProgress()
        self._stop_asked = self._kill_asked = False
        self.process = process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        process.setProcessEnvironment(env)
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        process.readyReadStandardOutput.connect(self._read_output)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._failed_to_start)
        self.append_log(f"$ {job.shlex.join(argv)}")
        process.start(argv[0], argv[1:])
        self.status.setText(f"{kind}: running")
        if run_dir is not None:
            self._poll.start()
        self._update_buttons()

    def _read_output(self) -> None:
        text = bytes(self.process.readAllStandardOutput()).decode(errors="replace")
        for line in text.replace("\r", "\n").splitlines():
            if line.strip():
                self._progress.feed(line)
                self.append_log(line)

    def append_log(self, line: str) -> None:
        self.log.appendPlainText(line)

    def _failed_to_start(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            line = f"could not start the {self.job_kind} job: {self.process.errorString()}"
            self._progress.feed(line)
            self.append_log(line)
            self._done(-1)

    def _finished(self, code: int, status) -> None:
        self._read_output()
        crashed = status == QProcess.ExitStatus.CrashExit
        self._done(-1 if crashed else code)

    def _done(self, code: int) -> None:
        self._poll.stop()
        if self._tail is not None:
            self.read_metrics()
        kind = self.job_kind
        run_dir = self._run_dir if kind != "embed" else None
        end = job_end(kind, code, self._progress, run_dir, stop_asked=self._stop_asked,
                      kill_asked=self._kill_asked)  # fmt: skip
        self.append_log(f"[{kind} {end.word}]")
        self.status.setText(end.text)
        self._update_buttons()
        self.job_finished.emit(kind, code)

    def read_metrics(self) -> None:
        if self._tail is not None:
            self.curves.add_records(self._tail.read())

    def stop(self) -> None:
        """Graceful: the trainer finishes its step, saves and exits 0; embed gets SIGTERM."""
        if not self.is_running():
            return
        if self.job_kind == "embed":
            self.process.terminate()
        else:
            try:
                self._run_dir.mkdir(parents=True, exist_ok=True)
                (self._run_dir / job.STOP_FILE).touch()
            except OSError as exc:
                self.problems.setText(
                    f"• {self._run_dir}: cannot write the STOP file ({exc.strerror}); use Kill"
                )
                return
        self._stop_asked = True
        self.status.setText(f"{self.job_kind}: stopping after this step…")

    def kill(self) -> None:
        """At once, with every process the job started (torchrun's workers included)."""
        if self.is_running():
            self._kill_asked = True
            job.kill_tree(job.process_tree(self.process.processId()))
            self.status.setText(f"{self.job_kind}: killing…")

    def checkpoint(self) -> Path | None:
        """The run folder's checkpoint to use (its best validation's, else its last), once one
        is on disk."""
        run = self._run_dir
        if run is None:
            try:
                run = self.spec().run_dir if self.output.text() else None
            except ValueError:
                run = None
        return model_file(run) if run and model_file(run).is_file() else None

    def copy_command(self) -> None:
        spec = self._checked(job.train_problems)
        if spec is not None:
            text = job.copy_commands(spec)
            QGuiApplication.clipboard().setText(text)
            self.append_log("copied to the clipboard:\n" + text)

    def use_model(self) -> None:
        checkpoint = self.checkpoint()
        if checkpoint is None:
            self.problems.setText(
                "• no checkpoint yet: train (or choose the output folder of a run)"
            )
            return
        self.checkpoint_chosen.emit(str(checkpoint.parent))
        self.status.setText(f"using {checkpoint.parent} for predictions")

    def _update_buttons(self) -> None:
        running = self.is_running()
        for name in ("Build dataset", "Train", "Resume"):
            self.buttons[name].setEnabled(not running)
        for name in ("Stop", "Kill"):
            self.buttons[name].setEnabled(running)

    def shutdown(self) -> None:
        """Leave no child behind (the window is closing): a training run is asked to stop
        (it saves), and killed if it has not ended within :data:`SHUTDOWN_WAIT_MS`."""
        if self.is_running():
            self.stop()
            if not self.process.waitForFinished(SHUTDOWN_WAIT_MS):
                self.kill()
                self.process.waitForFinished(5000)
        if self._probe is not None and self._probe.state() != QProcess.ProcessState.NotRunning:
            self._probe.kill()
            self._probe.waitForFinished(2000)
