import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from trainer import cli

SAMPLES = Path(__file__).parents[2] / ".." / "shared" / "testdata" / "exif-samples"


@pytest.fixture
def photos(tmp_path, monkeypatch):
    if not SAMPLES.is_dir():
        pytest.skip(f"test data not found at {SAMPLES.resolve()}")
    monkeypatch.setenv("LOCDIFF_STATE_DIR", str(tmp_path / "state"))
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("DSCN0010.jpg", "DSCN0012.jpg"):
        dst = folder / name
        shutil.copyfile(SAMPLES / "jpg" / "gps" / name, dst)
        dst.chmod(dst.stat().st_mode | stat.S_IWUSR)
    (folder / "broken.jpg").write_bytes(b"this is not a photo")
    return folder


def lines(capsys):
    return capsys.readouterr().out.strip().splitlines()


def by_name(out):
    return {Path(line.split(": ", 1)[0]).name: line.split(": ", 1)[1] for line in out}


def test_read_reports_one_line_per_file_and_fails_on_a_bad_one(photos, capsys):
    assert cli.main(["gps", "read", str(photos)]) == 1
    out = by_name(lines(capsys))
    assert len(out) == 3
    assert out["broken.jpg"].startswith("error: not a JPEG, PNG, TIFF, WebP or HEIC file")
    assert out["DSCN0010.jpg"] == "43.4674483 N, 11.8851267 E (exif)"


def test_read_json(photos, capsys):
    assert cli.main(["gps", "read", str(photos / "DSCN0012.jpg"), "--json"]) == 0
    [doc] = [json.loads(line) for line in lines(capsys)]
    assert doc["ok"] and doc["source"] == "exif"
    assert doc["lat"] == pytest.approx(43.46715667, abs=1e-7)


def test_write_remove_undo(photos, capsys):
    photo = photos / "DSCN0010.jpg"
    original = photo.read_bytes()
    code = cli.main(
        [
            "gps",
            "write",
            str(photo),
            "--lat",
            "-33.8568",
            "--lon",
            "151.2153",
            "--alt",
            "12",
            "--keep-mtime",
            "--backend",
            "builtin",
        ]
    )
    assert code == 0
    assert "done (built-in writer), original kept as" in lines(capsys)[0]
    cli.main(["gps", "read", str(photo), "--json"])
    doc = json.loads(lines(capsys)[0])
    assert (doc["lat"], doc["lon"], doc["alt"]) == pytest.approx((-33.8568, 151.2153, 12.0))
    assert cli.main(["gps", "remove", str(photo)]) == 0
    capsys.readouterr()
    cli.main(["gps", "read", str(photo)])
    assert lines(capsys)[0].endswith("no GPS")
    assert cli.main(["gps", "undo"]) == 0
    assert lines(capsys)[0].endswith(": restored")
    cli.main(["gps", "read", str(photo), "--json"])
    assert json.loads(lines(capsys)[0])["lat"] == pytest.approx(-33.8568)
    assert cli.main(["gps", "undo"]) == 2  # the journal holds one batch
    assert photo.with_name("DSCN0010.jpg_original").read_bytes() == original


def test_write_with_a_bad_file_exits_one_and_writes_the_rest(photos, capsys):
    code = cli.main(
        [
            "gps",
            "write",
            str(photos),
            "--lat",
            "1",
            "--lon",
            "2",
            "--no-backup",
            "--backend",
            "builtin",
        ]
    )
    assert code == 1
    out = by_name(lines(capsys))
    assert len(out) == 3 and out["broken.jpg"].startswith("error: not a JPEG")
    assert out["DSCN0010.jpg"] == out["DSCN0012.jpg"] == "done (built-in writer)"
    assert not list(photos.glob("*_original"))


def test_bad_arguments_are_messages_not_tracebacks(photos, capsys):
    assert cli.main(["gps", "write", str(photos), "--lat", "95", "--lon", "2"]) == 2
    assert "outside [-90, 90]" in capsys.readouterr().err
    assert cli.main(["gps", "read", str(photos / "nothing-here")]) == 1
    assert "file not found" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        cli.main(["gps", "write", str(photos)])  # --lat and --lon are required
    assert info.value.code == 2


def test_undo_with_nothing_recorded(photos, capsys):
    assert cli.main(["gps", "undo"]) == 2
    assert "nothing to undo" in capsys.readouterr().err


def test_gps_help_from_the_entry_point():
    done = subprocess.run(
        [sys.executable, "-m", "trainer", "gps", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "write" in done.stdout and "undo" in done.stdout
