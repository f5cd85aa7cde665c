"""Live training curves (pyqtgraph): loss, learning rate, throughput, and the validation accuracy
of the best guess within 25, 200, 750 and 2500 km, fed with ``metrics.jsonl`` records
(:class:`app.model.training_job.MetricsTail`). All plots share the step axis.

The learning rate has its own axis (:class:`LearningRateAxis`, ticks such as 1e-3 and 2.5e-4)
and a range from 0 to a quarter above its largest value: pyqtgraph would spread a constant rate
over ±0.5 around it, where 1e-3 sits on the tick labelled 0."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtWidgets import QGridLayout, QWidget

VAL_THRESHOLDS_KM = (25, 200, 750, 2500)
_VAL_COLOURS = ("#d62728", "#ff7f0e", "#2ca02c", "#1f77b4")
TRAIN_SERIES = {"loss": "Loss", "lr": "Learning rate", "samples_per_s": "Samples / s"}
LR_HEADROOM = 1.25  # the learning-rate axis ends this far above the largest rate


def scientific(value: float, spacing: float) -> str:
    """``value`` as ``1e-3``, ``2.5e-4`` or ``0``, with the digits that ticks ``spacing`` apart
    need to differ (at most four significant)."""
    if value == 0 or abs(value) < abs(spacing) * 1e-6:  # 0, or 0 up to rounding
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    finest = math.floor(math.log10(abs(spacing))) if spacing else exponent - 3
    digits = min(max(exponent - finest, 0), 3)
    mantissa = f"{value / 10**exponent:.{digits}f}"
    if abs(float(mantissa)) >= 10:  # 9.99 rounded up to 10.0
        exponent += 1
        mantissa = f"{value / 10**exponent:.{digits}f}"
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{exponent}"


class LearningRateAxis(pg.AxisItem):
    """A value axis whose ticks read in scientific notation (no SI prefix)."""

    def __init__(self, orientation: str = "left", **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self.enableAutoSIPrefix(False)

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph API)
        return [scientific(v * scale, spacing * scale) for v in values]


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
            axes = {"left": LearningRateAxis()} if name == "lr" else None
            plot = self._plot(title, grid, i // 2, i % 2, axes)
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

    def _plot(
        self, title: str, grid: QGridLayout, row: int, col: int, axes: dict | None = None
    ) -> pg.PlotWidget:
        plot = pg.PlotWidget(self, background="w", axisItems=axes)
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
        if "lr" in touched:
            self._fit_learning_rate()

    def _fit_learning_rate(self) -> None:
        """0 to a quarter above the largest rate: a constant rate is a line near the top, a
        warm-up or a decay reads against 0."""
        top = max(self.series["lr"][1], default=0.0)
        if math.isfinite(top) and top > 0:
            self.plots["lr"].setYRange(0.0, top * LR_HEADROOM, padding=0)
