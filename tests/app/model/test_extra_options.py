"""The "More options" check: typos, unreadable values and stray words are named with the fix,
options the form sets are refused, and what it accepts the trainer's own parser accepts."""

from __future__ import annotations

import pytest

from app.model.extra_options import close_options, option_problems, split_options

TINY = "--widths 32,16 --bottleneck 8 --anchors 64 --dropout 0 --lr 1e-3 --log-every 2"


def test_good_options_pass_and_the_trainer_parses_them_alike():
    from trainer.cli import build_parser

    args = split_options(TINY + " --lr-schedule=cosine --warmup 10 --max-steps 40")
    assert option_problems(args) == []
    parsed = build_parser().parse_args(["train", *args])
    assert (parsed.lr_schedule, parsed.warmup_steps, parsed.max_steps) == ("cosine", 10, 40)
    assert option_problems(()) == []


def test_an_unknown_option_is_named_with_the_nearest_real_ones():
    [problem] = option_problems(["--lr-wamup", "100"])
    assert problem.startswith("More options: unknown option --lr-wamup (did you mean --warmup")
    [problem] = option_problems(["--dropuot=0.1"])
    assert "unknown option --dropuot (did you mean --dropout?)" in problem
    [problem] = option_problems(["--frobnicate"])
    assert "unknown option --frobnicate;" in problem and "did you mean" not in problem
    assert close_options("--steps", ["--max-steps", "--seed", "--accum-steps"]) == [
        "--max-steps",
        "--accum-steps",
    ]


def test_unreadable_values_and_stray_words():
    assert option_problems(["--max-steps", "ten"]) == [
        "More options: --max-steps: invalid int value: 'ten'"
    ]
    [problem] = option_problems(["--lr-schedule", "linear"])
    assert problem.startswith("More options: --lr-schedule: invalid choice: 'linear'")
    assert option_problems(["--lr"]) == ["More options: --lr: expected one argument"]
    assert option_problems(["--lr", "1e-3", "512"]) == [
        "More options: '512' is not an option or the value of one"
    ]
    assert "run `locdiff train --help`" in option_problems(["--help"])[0]


def test_options_the_form_sets_are_refused_with_the_field_to_use():
    assert option_problems(["--epochs", "3"]) == [
        "More options: --epochs comes from the form: set Epochs"
    ]
    [problem] = option_problems(["--batch=64"])  # an abbreviation is the same option
    assert problem == "More options: --batch-size comes from the form: set Batch size"
    assert "press Resume instead" in option_problems(["--resume", "/x"])[0]
    assert option_problems(["--val", "v.npz"]) == []
    assert option_problems(["--val", "v.npz"], val_fraction=0.05) == [
        "More options: --val brings its own validation photos; set Validation share to 0"
    ]


def test_shell_quoting():
    assert split_options("--widths 32,16 --lr '1e-3'") == ("--widths", "32,16", "--lr", "1e-3")
    with pytest.raises(ValueError, match="More options: a quote is open: close the quote"):
        split_options("--x 'open")
