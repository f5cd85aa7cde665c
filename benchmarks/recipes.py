"""Training recipes compared on the development task: held-out accuracy against steps.

    python benchmarks/dev_task.py --out /tmp/locdiff-dev-task        # once: the task
    python benchmarks/recipes.py --task /tmp/locdiff-dev-task --recipe paper --recipe default \\
        [--variant NAME:key=value,...] [--held-out near far] [--degree 23] [--epochs 4] \\
        [--seed 0 ...] [--val-items 512] [--out /tmp/locdiff-recipes] [--picture curves.png]

Every (recipe, held-out set, seed) trains one run on ``{held}_train.npz`` with
``{held}_val.npz`` as its validation set, validated after every epoch (the run's own
validation: ``--val-items`` photos, K = 16, DDIM-20, scored as the best guess), in the same
process, one after another; a run folder that already finished is read back, not trained
again. ``--variant`` adds a recipe: the default one with settings changed (TrainConfig fields;
``diffusion.name`` for the diffusion's), e.g. ``--variant no-ema:ema_decay=0``.

Prints one table: per run and validation, % of held-out photos within 200 / 750 / 2500 km
and the median error, with the task's k-NN votes (dev_task.py's) on the same scored photos
beside them; ``--picture`` draws the curves (median error and % within 750
km against steps, one colour per recipe, the best k-NN vote dashed) with pyqtgraph's exporter.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dev_task import KS, knn_guesses, scores  # noqa: E402
from tables import print_table  # noqa: E402

from locdiff_core.atomic_file import atomic_write  # noqa: E402
from locdiff_core.run_layout import METRICS_FILE, STATE_FILE  # noqa: E402
from trainer.config import TrainConfig, with_recipe  # noqa: E402
from trainer.data import load_embeddings  # noqa: E402
from trainer.train import RunWriter, train, validation_subset  # noqa: E402

METRICS = ("acc_200km", "acc_750km", "acc_2500km", "median_km")


def _value(current: object, text: str) -> object:
    """``text`` parsed as the type of a setting's current value."""
    if isinstance(current, enum.Enum):
        return type(current)(text)
    if isinstance(current, bool):
        return text.lower() in ("1", "true", "yes")
    if isinstance(current, tuple):
        return tuple(int(x) for x in text.split("/"))
    if current is None:
        return float(text)
    return type(current)(text)


def apply_variant(config: TrainConfig, spec: str) -> tuple[str, TrainConfig]:
    """``NAME:key=value,...`` over ``config`` (tuples as ``1024/512``)."""
    name, _, settings = spec.partition(":")
    top, diffusion = {}, {}
    for item in filter(None, settings.split(",")):
        key, _, text = item.partition("=")
        if key.startswith("diffusion."):
            key = key.removeprefix("diffusion.")
            diffusion[key] = _value(getattr(config.diffusion, key), text)
        else:
            top[key] = _value(getattr(config, key), text)
    diff = dataclasses.replace(config.diffusion, **diffusion)
    return name, dataclasses.replace(config, **top, diffusion=diff)


def run_once(config: TrainConfig) -> list[dict]:
    """Train ``config`` (unless its folder holds a finished run); its validation lines."""
    done = config.out / "done.json"
    if not done.exists():
        if (config.out / STATE_FILE).exists():
            train(config, RunWriter(config.out, echo=lambda line: None), resume=True)
        else:
            train(config, RunWriter(config.out, echo=lambda line: None))
        write_json(done, config.to_dict())
    lines = (config.out / METRICS_FILE).read_text().splitlines()
    return [r for r in map(json.loads, lines) if "val" in r]


def write_json(path: Path, value: object) -> None:
    with atomic_write(path) as fh:
        fh.write(json.dumps(value, indent=1).encode("utf-8"))


def subset_votes(task: Path, held: str, val_items: int) -> dict[str, dict]:
    """The k-NN votes on the held-out rows the runs score (cached beside the task)."""
    cache = task / f"{held}_votes_{val_items}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    train_set = load_embeddings(task / f"{held}_train.npz")
    val = load_embeddings(task / f"{held}_val.npz")
    rows = validation_subset(len(val.lat), val_items)
    votes = {
        f"{k}-NN vote": scores(
            knn_guesses(train_set.embedding, train_set.lat, train_set.lon, val.embedding[rows], k),
            val.lat[rows],
            val.lon[rows],
        )
        for k in KS
    }
    write_json(cache, votes)
    return votes


def subset_classifier(task: Path, held: str, val_items: int) -> dict | None:
    """The cell classifier's scores on the held-out rows the runs score (dev_task.py saves its
    guesses), or None for a task made without it."""
    path = task / f"{held}_classifier.npy"
    if not path.exists():
        return None
    val = load_embeddings(task / f"{held}_val.npz")
    rows = validation_subset(len(val.lat), val_items)
    return scores(np.load(path)[rows], val.lat[rows], val.lon[rows])


def best_vote(votes: dict) -> tuple[str, dict]:
    """The k-NN vote with the lowest median error."""
    name = min(votes, key=lambda k: votes[k]["median_km"])
    return name, votes[name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", type=Path, default=Path("/tmp/locdiff-dev-task"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/locdiff-recipes"))
    parser.add_argument("--recipe", action="append", default=[])
    parser.add_argument("--variant", action="append", default=[])
    parser.add_argument("--held-out", nargs="+", default=["near", "far"])
    parser.add_argument("--degree", type=int, default=23)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, action="append")
    parser.add_argument("--val-items", type=int, default=512)
    parser.add_argument("--picture", type=Path)
    args = parser.parse_args()
    recipes = args.recipe or ([] if args.variant else ["paper", "default"])
    seeds = args.seed or [0]
    rows, curves = [], {}
    for held in args.held_out:
        votes = subset_votes(args.task, held, args.val_items)
        for name, vote in votes.items():
            rows.append(_row(held, name, "-", vote))
        classifier = subset_classifier(args.task, held, args.val_items)
        if classifier is not None:
            rows.append(_row(held, "cell classifier (MLP)", "-", classifier))
        specs = [(r, None) for r in recipes] + [(None, v) for v in args.variant]
        for recipe, variant in specs:
            for seed in seeds:
                base = TrainConfig(
                    data=args.task / f"{held}_train.npz",
                    val=args.task / f"{held}_val.npz",
                    out=Path(),
                    degree=args.degree,
                    epochs=args.epochs,
                    seed=seed,
                    val_items=args.val_items,
                    checkpoint_every=10**9,
                )
                if variant is None:
                    name, config = recipe, with_recipe(base, recipe)
                else:
                    name, config = apply_variant(with_recipe(base, "default"), variant)
                out = args.out / f"L{args.degree}-{held}-{name}-seed{seed}"
                config = dataclasses.replace(config, out=out)
                start = time.perf_counter()
                vals = run_once(config)
                took = time.perf_counter() - start
                print(f"# {out.name}: {took:.0f} s", file=sys.stderr, flush=True)
                curves[(held, name, seed)] = vals
                for v in vals:
                    rows.append(_row(held, f"{name} (seed {seed})", v["step"], v["val"]["best"]))
    print(f"# L={args.degree}, {args.epochs} epochs, {args.val_items} held-out photos scored")
    print_table(
        None,
        ("held out", "model", "step", "200 km %", "750 km %", "2500 km %", "median km"),
        rows,
        right_from=2,
    )
    if args.picture:
        draw_curves(args.picture, curves, args.task, args.held_out, args.val_items)
        print(f"# curves: {args.picture}")


def _row(held: str, model: str, step, s: dict) -> tuple:
    return (
        held,
        model,
        step,
        f"{s['acc_200km']:.1f}",
        f"{s['acc_750km']:.1f}",
        f"{s['acc_2500km']:.1f}",
        f"{s['median_km']:,.0f}",
    )


def draw_curves(path: Path, curves: dict, task: Path, held_outs: list[str], val_items: int) -> None:
    """The median error and % within 200 and 750 km against steps, a row of panels per
    held-out set; dashed: the best k-NN vote at that measure (the bar)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import pyqtgraph as pg
    import pyqtgraph.exporters
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    pg.setConfigOptions(antialias=True, background="w", foreground="k")
    layout = pg.GraphicsLayoutWidget()
    layout.resize(1500, 420 * len(held_outs))
    layout.show()
    names = sorted({name for _, name, _ in curves})
    colours = {n: pg.intColor(i, hues=max(len(names), 3)) for i, n in enumerate(names)}
    panels = (
        ("median_km", "median error, km", min),
        ("acc_200km", "% within 200 km", max),
        ("acc_750km", "% within 750 km", max),
    )
    for r, held in enumerate(held_outs):
        votes = subset_votes(task, held, val_items)
        for c, (metric, label, best) in enumerate(panels):
            plot = layout.addPlot(row=r, col=c, title=f"{held} held-out: {label}")
            plot.setLabel("bottom", "training steps")
            plot.getAxis("left").setWidth(50)
            plot.addLegend(offset=(-10, 10))
            for (h, name, seed), vals in sorted(curves.items()):
                if h != held or not vals:
                    continue
                xs = [v["step"] for v in vals]
                ys = [v["val"]["best"][metric] for v in vals]
                plot.plot(
                    xs,
                    ys,
                    pen=pg.mkPen(colours[name], width=2),
                    symbol="o",
                    symbolSize=5,
                    symbolBrush=colours[name],
                    name=f"{name} s{seed}",
                )
            bar = best(v[metric] for v in votes.values())
            plot.addItem(pg.InfiniteLine(bar, angle=0, pen=pg.mkPen("k", style=Qt.DashLine)))
    app.processEvents()
    pyqtgraph.exporters.ImageExporter(layout.scene()).export(str(path))
    layout.close()


if __name__ == "__main__":
    main()
