"""Live training curves (pyqtgraph): loss, learning rate, throughput, and the validation accuracy
of the best guess within 25, 200, 750 and 2500 km, fed with ``metrics.jsonl`` records
(:class:`app.model.training_job.MetricsTail`). All plots share the step axis."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QGridLayout, QWidget

VAL_THRESHOLDS_KM = (25, 200, 750, 2500)
_VAL_COLOURS = ("#d62728", "#ff7f0e", "#2ca02c", "#1f77b4")
TRAIN_SERIES = {"loss": "Loss", "lr": "Learning rate", "samples_per_s": "Samples / s"}


class TrainingCurves(QWidget):
    """Four plots. ``series[name]`` holds the (steps, values) drawn, for tests and tooltips."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        self.plots: dict[str, pg.PlotWidget] = {}
        self.series: dict[str, tuple[list[float], list[float]]] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}
        for i, (name, title) in enumerate(TRAIN_SERIES.items()):
            plot = self._plot(title, grid, i // 2, i % 2)
            self._curves[name] = plot.plot([], [], pen=pg.mkPen("#1f77b4", width=2))
            self.series[name] = ([], [])
        val = self._plot("Validation: best guess within (%)", grid, 1, 1)
        val.addLegend(offset=(5, 5))
        for km, colour in zip(VAL_THRESHOLDS_KM, _VAL_COLOURS, strict=True):
            name = f"acc_{km}km"
            self._curves[name] = val.plot(
                [], [], pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=5,
                symbolBrush=colour, name=f"{km} km",
            )  # fmt: skip
            self.series[name] = ([], [])
        self.plots["val"] = val
        self.plots["lr"].getAxis("left").enableAutoSIPrefix(False)

    def _plot(self, title: str, grid: QGridLayout, row: int, col: int) -> pg.PlotWidget:
        plot = pg.PlotWidget(self, background="w")
        plot.setTitle(title, color="k", size="9pt")
        plot.showGrid(x=True, y=True, alpha=0.3)
        plot.setLabel("bottom", "step")
        plot.setMinimumHeight(140)
        grid.addWidget(plot, row, col)
        key = next((k for k, t in TRAIN_SERIES.items() if t == title), title)
        self.plots[key] = plot
        return plot

    def clear(self) -> None:
        for name, curve in self._curves.items():
            self.series[name] = ([], [])
            curve.setData([], [])

    def add_records(self, records: list[dict]) -> None:
        """Append training lines (step, loss, lr, samples_per_s) and validation lines (step,
        val.best.acc_*km); a resumed run's steps continue the same curves."""
        touched = set()
        for record in records:
            step = record.get("step")
            if not isinstance(step, int | float):
                continue
            best = (record.get("val") or {}).get("best") if "val" in record else None
            names = (
                [(f"acc_{km}km", best.get(f"acc_{km}km")) for km in VAL_THRESHOLDS_KM]
                if isinstance(best, dict)
                else [(name, record.get(name)) for name in TRAIN_SERIES]
            )
            for name, value in names:
                if isinstance(value, int | float):
                    steps, values = self.series[name]
                    steps.append(float(step))
                    values.append(float(value))
                    touched.add(name)
        for name in touched:
            self._curves[name].setData(*self.series[name])
