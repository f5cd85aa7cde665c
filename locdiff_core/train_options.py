"""The options of ``locdiff train``, defined once: the trainer's command line
(:mod:`trainer.cli.model`) is built from :func:`add_train_options`, and the app's Trainer tab
checks its "More options" field against the same definitions (the app never imports the
trainer, which loads torch). argparse only: Qt-free and torch-free.

Every default is None so that a resume can tell the options given from those left out; the real
defaults live in ``trainer.config.TrainConfig`` (the help repeats them).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_train_options(parser: argparse.ArgumentParser) -> None:
    """Add every ``locdiff train`` option to ``parser`` (dests as in ``TrainConfig``, except
    ``bottleneck``, ``loss``, ``kl_estimator``, ``anchors``, ``cond_drop`` and ``cond_noise``)."""
    add = parser.add_argument
    add("--data", type=Path, metavar="TRAIN", help="embedding dataset (required for a new run)")
    add("--out", type=Path, metavar="RUN_DIR", help="run folder (required for a new run)")
    add("--resume", type=Path, metavar="RUN_DIR", help="continue the run in RUN_DIR")
    add(
        "--recipe",
        choices=["default", "paper"],
        help="a named set of the settings below (default: the best measured on held-out "
        "photos; paper: the paper's Appendix A.7); options given override it",
    )
    add("--val", type=Path, metavar="VAL", help="a separate validation dataset")
    add("--val-fraction", type=float, metavar="F", help="hold out this share of TRAIN instead")
    add(
        "--val-min-km",
        type=float,
        metavar="KM",
        help="drop training photos within KM of a validation photo (OSV-5M: 1)",
    )
    add("--val-every", type=int, metavar="EPOCHS", help="validate every EPOCHS epochs (1)")
    add("--val-items", type=int, metavar="N", help="validation photos scored (512)")
    add("--degree", type=int, help="SHDD degree L (paper: 15-47; 47)")
    add("--epochs", type=int, help="(10)")
    add(
        "--batch-size",
        type=int,
        help="GLOBAL batch, split over processes and --accum-steps (512)",
    )
    add("--accum-steps", type=int, help="gradient accumulation micro-steps per step (1)")
    add("--seed", type=int, help="(0)")
    add("--device", help="cpu or cuda (cpu); under torchrun, cuda means cuda:LOCAL_RANK")
    add("--precision", choices=["bf16", "fp32"], help="network precision on CUDA (bf16)")
    add("--lr", type=float, help="Adam learning rate (3e-4; paper 1e-4)")
    add(
        "--lr-schedule",
        choices=["constant", "cosine"],
        help="(cosine, to lr/10 at the last step; the paper's: constant)",
    )
    add("--warmup-steps", type=int, help="linear warm-up steps (100; paper 0)")
    add("--widths", help="CS-UNet widths before the bottleneck (1024,512,256)")
    add("--bottleneck", type=int, help="paper: 32 or 128 (128)")
    add("--dropout", type=float, help="(0.3)")
    add(
        "--cond-rms-norm",
        type=int,
        choices=[0, 1],
        metavar="0|1",
        help="1: the network rescales each condition to RMS 1 per value (1; paper 0)",
    )
    add(
        "--ema-decay",
        type=float,
        metavar="D",
        help="sample, validate and save an average of the weights (0.999; 0: none, the paper)",
    )
    add(
        "--cond-noise",
        type=float,
        metavar="S",
        help="noise added to training conditions, relative to their RMS (1: cosine ~0.7; 0)",
    )
    add("--loss", choices=["shdd_kl", "mse", "cosine"], help="(shdd_kl)")
    add(
        "--kl-estimator",
        choices=["importance", "uniform"],
        help="importance (default): resolves the location below the anchor spacing; "
        "uniform: the paper's",
    )
    add("--anchors", type=int, help="uniform KL anchors per batch (2048)")
    add("--cond-drop", type=float, help="condition dropout for classifier-free guidance (0)")
    add("--log-every", type=int, help="steps between metrics lines (50)")
    add(
        "--checkpoint-every",
        type=int,
        metavar="STEPS",
        help="steps between checkpoints (1000; and at the end)",
    )
    add(
        "--early-stop",
        type=int,
        metavar="N",
        help="stop after N validations without a lower median error (0: never; needs validation)",
    )
    add("--max-steps", type=int, help="stop at this step")
    add("--max-seconds", type=float, help="stop after this much training time")
    add("--dump-rank-params", action="store_const", const=True, help=argparse.SUPPRESS)
