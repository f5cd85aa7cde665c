"""``locdiff``: the command line of LocDiff Studio, one module per group of commands.

- ``locdiff selfcheck``: a headless check of the SHDD core (here);
- ``locdiff train``, ``locdiff predict`` (:mod:`trainer.cli.model`, :mod:`trainer.cli.predict`);
- ``locdiff embed``, ``locdiff download-encoder`` (:mod:`trainer.cli.embed`);
- ``locdiff dataset info|convert`` (:mod:`trainer.cli.dataset`);
- ``locdiff eval`` (:mod:`trainer.cli.evaluate`);
- ``locdiff gps read|write|remove|undo`` (:mod:`locdiff_core.photo.cli`: photo positions need
  nothing of the trainer).

``locdiff --help`` lists every command on one line.
"""

from __future__ import annotations

import argparse
import sys
import time

from locdiff_core import __version__
from locdiff_core.photo.cli import add_gps_parser
from trainer.cli.dataset import add_dataset_parser
from trainer.cli.embed import add_embed_parsers
from trainer.cli.evaluate import add_eval_parser
from trainer.cli.model import add_model_parsers


def _selfcheck(args: argparse.Namespace) -> int:
    import torch

    from locdiff_core import shdd
    from locdiff_core.geo import fibonacci_lattice, great_circle_km

    lat, lon = fibonacci_lattice(args.points)
    start = time.perf_counter()
    e = shdd.encode(lat, lon, args.degree)
    d_lat, d_lon, mass = shdd.decode(e)
    elapsed = time.perf_counter() - start
    err = great_circle_km(d_lat, d_lon, lat, lon)
    ok = bool(torch.isfinite(e).all()) and float(err.max()) < 1.0
    print(f"locdiff {__version__}  torch {torch.__version__}  cuda={torch.cuda.is_available()}")
    print(
        f"SHDD degree {args.degree}: encoded and decoded {args.points} points in "
        f"{elapsed:.2f} s; worst round-trip error {float(err.max()) * 1000:.3f} m; "
        f"smallest window mass {float(mass.min()):.4f}"
    )
    print("selfcheck " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


class _OneLineEach(argparse.HelpFormatter):
    """Every command's help on its own line: argparse measures the command names two columns
    less indented than it prints them, so the longest one (``download-encoder``) would push its
    help to the next line; the help column is set past it here."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=100)
        self._action_max_length = len("download-encoder") + 6


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="locdiff",
        description="LocDiff Studio command line: find where photos were taken.",
        formatter_class=_OneLineEach,
    )
    parser.add_argument("--version", action="version", version=f"locdiff {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = sub.add_parser("selfcheck", help="headless check: SHDD encode/decode round trip")
    check.add_argument("--degree", type=int, default=47, help="SHDD degree L (default 47)")
    check.add_argument("--points", type=int, default=8, help="points to round-trip (default 8)")
    check.set_defaults(func=_selfcheck)
    add_model_parsers(sub)
    add_embed_parsers(sub)
    add_dataset_parser(sub)
    add_eval_parser(sub)
    add_gps_parser(sub)
    return parser


SIGNED_OPTIONS = ("--offset",)  # their values may start with "-": "--offset -00:01:30"


def signed_values(argv: list[str]) -> list[str]:
    """``--offset -00:01:30`` as ``--offset=-00:01:30``: argparse takes a value starting with
    "-" (other than a plain number) for an option and would refuse the line."""
    out: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg in SIGNED_OPTIONS:
            value = next(it, None)
            out.append(arg if value is None else f"{arg}={value}")
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(signed_values(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except ValueError as exc:
        print(f"locdiff {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the state folder cannot be written
        print(f"locdiff {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"locdiff {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
