import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainer import cli

SAMPLES = Path(__file__).parents[3] / ".." / "shared" / "testdata" / "exif-samples"


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
    assert out["broken.jpg"].startswith("error: not an image Pillow can read (")
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


def many_copies(folder: Path, count: int) -> list[Path]:
    if not SAMPLES.is_dir():
        pytest.skip(f"test data not found at {SAMPLES.resolve()}")
    folder.mkdir()
    photos = []
    for i in range(count):
        photo = folder / f"IMG_{i:04d}.jpg"
        shutil.copyfile(SAMPLES / "jpg" / "gps" / "DSCN0010.jpg", photo)
        photo.chmod(0o644)
        photos.append(photo)
    return photos


def run_gps(state: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "trainer", "gps", *args],
        cwd=Path(__file__).parents[3],
        env={**os.environ, "LOCDIFF_STATE_DIR": str(state)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not condition():
        time.sleep(0.01)
    return condition()


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if ".locdiff-" in p.name]


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
@pytest.mark.parametrize(
    ("action", "sig"),
    [
        ("write", signal.SIGTERM),
        ("write", signal.SIGINT),
        ("write", signal.SIGHUP),
        ("remove", signal.SIGTERM),
    ],
    ids=["write-SIGTERM", "write-SIGINT", "write-SIGHUP", "remove-SIGTERM"],
)
def test_a_signal_stops_a_batch_cleanly_after_the_current_file(tmp_path, action, sig):
    photos = many_copies(tmp_path / "photos", 400)
    original = photos[0].read_bytes()
    extra = ["--lat", "1", "--lon", "2"] if action == "write" else []

    def backups() -> list[Path]:
        return list((tmp_path / "photos").glob("*_original"))

    proc = run_gps(
        tmp_path / "state", action, str(tmp_path / "photos"), *extra, "--backend", "builtin"
    )
    try:
        assert wait_for(lambda: len(backups()) >= 3), proc.communicate(timeout=60)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    done = len(backups())
    assert 3 <= done < len(photos)
    assert f"stopped by {sig.name}: {done} of {len(photos)} files done" in err
    assert f"{len(photos) - done} left untouched" in err and "Traceback" not in err
    assert len(out.splitlines()) == done  # one line per file done, none for the others
    assert not leftovers(tmp_path / "photos")
    changed = [p for p in photos if p.read_bytes() != original]
    assert len(changed) == done  # every file is either finished or untouched
    undo = run_gps(tmp_path / "state", "undo")
    out, err = undo.communicate(timeout=120)
    assert undo.returncode == 0, err
    assert len(out.splitlines()) == done
    assert all(p.read_bytes() == original for p in photos)


def test_a_second_batch_while_one_runs_is_refused_and_the_first_stays_undoable(
    tmp_path, monkeypatch, capsys
):
    photos = many_copies(tmp_path / "photos", 400)
    other = many_copies(tmp_path / "other", 1)[0]
    original = photos[0].read_bytes()
    state = tmp_path / "state"
    monkeypatch.setenv("LOCDIFF_STATE_DIR", str(state))
    first = run_gps(state, "write", str(tmp_path / "photos"), "--lat", "1", "--lon", "2")
    try:
        assert wait_for(lambda: (state / "gps-undo" / "batch.jsonl").exists())
        code = cli.main(["gps", "write", str(other), "--lat", "5", "--lon", "6"])
        still_running = first.poll() is None
        _out, err = first.communicate(timeout=120)
    finally:
        first.kill()
    assert still_running, "the first batch ended too soon for this test"
    assert first.returncode == 0, err
    message = capsys.readouterr().err
    assert code == 2 and f"another GPS write batch (pid {first.pid}) is running" in message
    assert "wait for it to finish" in message
    assert other.read_bytes() == original and not other.with_name("IMG_0000.jpg_original").exists()
    assert cli.main(["gps", "undo"]) == 0
    assert all(p.read_bytes() == original for p in photos)


def test_a_damaged_journal_is_a_message_naming_it(photos, capsys):
    photo = photos / "DSCN0010.jpg"
    cli.main(["gps", "write", str(photo), "--lat", "1", "--lon", "2", "--backend", "builtin"])
    index = Path(os.environ["LOCDIFF_STATE_DIR"]) / "gps-undo" / "batch.jsonl"
    index.write_text(index.read_text()[:-30] + "\n", encoding="utf-8")
    capsys.readouterr()
    assert cli.main(["gps", "undo"]) == 2
    err = capsys.readouterr().err
    assert f"the undo journal {index} is damaged" in err and "move the folder" in err
    assert "Traceback" not in err


def test_write_sweeps_temporary_files_left_by_a_killed_write(photos, capsys):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # its pid belongs to no running process now
    left = photos / f".DSCN0010.locdiff-{child.pid}-0123abcd.jpg"
    left.write_bytes(b"half a photo")
    running = photos / f".DSCN0012.locdiff-{os.getpid()}-0123abcd.jpg"  # a live writer's
    running.write_bytes(b"being written")
    code = cli.main(["gps", "write", str(photos / "DSCN0010.jpg"), "--lat", "1", "--lon", "2"])
    assert code == 0
    err = capsys.readouterr().err
    assert "removed 1 temporary file(s) left by an interrupted write" in err and str(left) in err
    assert not left.exists() and running.exists()


def test_a_batch_given_relative_paths_can_be_undone(photos, capsys, monkeypatch):
    photo = photos / "DSCN0010.jpg"
    original = photo.read_bytes()
    monkeypatch.chdir(photos)
    assert cli.main(["gps", "write", "DSCN0010.jpg", "--lat", "1", "--lon", "2"]) == 0
    monkeypatch.chdir(photos.parent)  # undo runs from anywhere
    capsys.readouterr()
    assert cli.main(["gps", "undo"]) == 0
    assert photo.read_bytes() == original
