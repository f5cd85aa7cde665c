import subprocess
import sys

import pytest

from trainer import cli


def test_selfcheck_passes(capsys):
    assert cli.main(["selfcheck", "--degree", "15", "--points", "5"]) == 0
    out = capsys.readouterr().out
    assert "selfcheck passed" in out and "degree 15" in out


def test_bad_degree_is_a_clear_error(capsys):
    assert cli.main(["selfcheck", "--degree", "-3"]) == 2
    assert "degree must be a non-negative int" in capsys.readouterr().err


def test_module_entry_point_prints_help():
    done = subprocess.run(
        [sys.executable, "-m", "trainer", "--help"], capture_output=True, text=True, check=True
    )
    assert "selfcheck" in done.stdout


def test_help_lists_every_command_on_one_line(capsys):
    import argparse

    from trainer.cli import build_parser

    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    lines = capsys.readouterr().out.splitlines()
    for name in sub._name_parser_map:
        [line] = [ln for ln in lines if ln.strip().split(" ")[0] == name]
        help_text = next(a.help for a in sub._choices_actions if a.dest == name)
        assert line.strip().endswith(help_text), line
