import subprocess
import sys

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
