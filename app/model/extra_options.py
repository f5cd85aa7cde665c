"""The Trainer tab's "More options" field: extra ``locdiff train`` options typed as a shell
would, checked before launch against the trainer's own option definitions
(:mod:`locdiff_core.train_options`, from which ``locdiff train`` builds its parser), so a typo
is named next to the field instead of ending the job in a torchrun traceback.

The options the tab sets from its own fields (dataset, output folder, degree, epochs, batch
size, device, validation share; ``--resume`` by its button) are refused here with the field to
change instead: given twice, the last would silently win over the form, and the form, the
launched command and "Copy command" would disagree.
"""

from __future__ import annotations

import argparse
import shlex
from difflib import SequenceMatcher

from locdiff_core.train_options import add_train_options

#: option dest -> how to set it in the Trainer tab instead
OWNED_BY_FIELDS = {
    "data": "choose the Dataset",
    "out": "choose the Output folder (the run goes in its run/ folder)",
    "resume": "press Resume instead",
    "degree": "set Degree L",
    "epochs": "set Epochs",
    "batch_size": "set Batch size",
    "device": "choose the device in the Processes row",
    "val_fraction": "set Validation share",
}
_HELP = ("-h", "--help")


class _RefusalError(Exception):
    """What argparse would have printed before exiting."""


class _CheckingParser(argparse.ArgumentParser):
    """The ``locdiff train`` options, raising instead of printing usage and exiting."""

    def __init__(self) -> None:
        super().__init__(prog="locdiff train", add_help=False, exit_on_error=False)
        add_train_options(self)

    def error(self, message: str):  # argparse's hook for every refusal
        raise _RefusalError(message)


def split_options(text: str) -> tuple[str, ...]:
    """Split the field like a shell would; ValueError naming what is wrong."""
    try:
        return tuple(shlex.split(text))
    except ValueError as exc:
        problem = {
            "No closing quotation": "a quote is open: close the quote",
            "No escaped character": "it ends with a backslash: remove it or escape something",
        }.get(str(exc), str(exc))
        raise ValueError(f"More options: {problem}") from None


def option_problems(args: tuple[str, ...] | list[str], *, val_fraction: float = 0.0) -> list[str]:
    """What is wrong with these extra ``locdiff train`` arguments (empty: nothing): an unknown
    option (with the closest real ones), a missing or unreadable value, a stray word, an option
    that one of the tab's fields sets, or ``--val`` beside a validation share."""
    if not args:
        return []
    if any(arg in _HELP for arg in args):
        return ["More options: --help only prints the trainer's help; run `locdiff train --help`"]
    parser = _CheckingParser()
    try:
        given, unknown = parser.parse_known_args(list(args))
    except argparse.ArgumentError as exc:
        return [f"More options: {exc.argument_name}: {exc.message}"]
    except _RefusalError as exc:
        return [f"More options: {exc}"]
    if unknown:
        return [_unknown(unknown[0], parser)]
    problems = [
        f"More options: {_flag(parser, dest)} comes from the form: {instead}"
        for dest, instead in OWNED_BY_FIELDS.items()
        if getattr(given, dest) is not None
    ]
    if given.val is not None and val_fraction > 0:
        problems.append(
            "More options: --val brings its own validation photos; set Validation share to 0"
        )
    return problems


def _flag(parser: argparse.ArgumentParser, dest: str) -> str:
    return next(a.option_strings[0] for a in parser._actions if a.dest == dest)


def _unknown(arg: str, parser: argparse.ArgumentParser) -> str:
    if not arg.startswith("-"):
        return f"More options: {arg!r} is not an option or the value of one"
    word = arg.split("=", 1)[0]
    flags = [s for a in parser._actions for s in a.option_strings if a.help != argparse.SUPPRESS]
    close = close_options(word, flags)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    return f"More options: unknown option {word}{hint}; `locdiff train --help` lists them"


def close_options(word: str, flags: list[str], cutoff: float = 0.75) -> list[str]:
    """The flags nearest ``word`` (at most three, nearest first): by the whole name, or by one
    of its longer hyphenated parts (``--lr-wamup`` finds ``--warmup-steps``)."""

    def parts(name: str) -> list[str]:
        return [p for p in name.lstrip("-").split("-") if len(p) >= 4]

    def ratio(a: str, b: str) -> float:
        return SequenceMatcher(None, a, b).ratio()

    scored = []
    for flag in flags:
        whole = ratio(word.lstrip("-"), flag.lstrip("-"))
        part = max((ratio(a, b) for a in parts(word) for b in parts(flag)), default=0.0)
        scored.append((-max(whole, part), -whole, flag))
    return [flag for score, _, flag in sorted(scored)[:3] if -score >= cutoff]
