"""No process or temporary file outlives a GPS write: exiftool starts only when needed and ends
however the batch ends (normal exit, SIGTERM, SIGKILL), and the temporary files a killed write
leaves beside the photos are swept by the next batch."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from photo_samples import needs_exiftool, writable_copy

from locdiff_core.photo import exiftool as et
from locdiff_core.photo.gps import read_gps_batch
from locdiff_core.photo.leftovers import (
    STALE_AFTER_S,
    find_leftovers,
    folders_of,
    is_leftover_name,
    sweep_leftovers,
)
from locdiff_core.photo.safe_io import temp_path_for
from locdiff_core.photo.writing import (
    WriteConfig,
    WriteMethod,
    WriterBackend,
    remove_gps,
    write_gps,
)

REPO = Path(__file__).parents[3]
linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def processes_mentioning(marker: str) -> list[int]:
    """Live (not zombie) processes whose command line contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def wait_until(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def marked_exiftool(tmp_path, monkeypatch) -> str:
    """exiftool under a unique path, so its processes (and its guard's) can be found."""
    if et.exiftool_path() is None:
        pytest.skip("exiftool is not installed")
    folder = tmp_path / f"exiftool-marker-{os.getpid()}-{time.monotonic_ns()}"
    folder.mkdir()
    (folder / "exiftool").symlink_to(Path(et.exiftool_path()).resolve())
    monkeypatch.setenv("LOCDIFF_EXIFTOOL", str(folder / "exiftool"))
    return str(folder)


@linux_only
def test_exiftool_starts_on_the_first_request_and_ends_on_close(marked_exiftool):
    tool = et.Exiftool()
    assert not tool.running and processes_mentioning(marked_exiftool) == []
    assert tool.execute("-ver").strip()
    assert tool.running and processes_mentioning(marked_exiftool)  # exiftool and its guard
    tool.close()
    assert not tool.running
    assert wait_until(lambda: processes_mentioning(marked_exiftool) == [], 5)
    assert tool.execute("-ver").strip()  # a closed instance starts afresh when asked again
    tool.close()


@linux_only
def test_exiftool_that_died_is_restarted_on_the_next_request(marked_exiftool):
    tool = et.Exiftool()
    tool.execute("-ver")
    for pid in processes_mentioning(marked_exiftool):
        if b"perl" in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)
    with pytest.raises(et.ExiftoolError, match=r"exited unexpectedly|stopped responding"):
        tool.execute("-ver")
    assert tool.execute("-ver").strip()
    tool.close()
    assert wait_until(lambda: processes_mentioning(marked_exiftool) == [], 5)


@needs_exiftool
def test_reading_starts_no_exiftool_and_remove_asks_it(samples, tmp_path):
    et.close_shared()
    photo = writable_copy(samples / "jpg" / "Nikon_D70.jpg", tmp_path)  # no GPS
    [read] = read_gps_batch([photo])
    assert read.ok and read.value is None
    assert not et.shared().running  # reading never needs exiftool
    before = photo.read_bytes()
    [result] = remove_gps([photo], config=WriteConfig(backend=WriterBackend.AUTO))
    assert result.ok and result.value.method is WriteMethod.UNCHANGED
    assert photo.read_bytes() == before
    assert et.shared().running  # asked whether any reader sees a position to remove


@needs_exiftool
def test_a_write_starts_exiftool_to_verify_and_the_cli_ends_it(samples, tmp_path):
    et.close_shared()
    photo = writable_copy(samples / "jpg" / "gps" / "DSCN0010.jpg", tmp_path)
    [result] = write_gps([photo], 1.0, 2.0, config=WriteConfig(backend=WriterBackend.AUTO))
    assert result.ok and result.value.method is WriteMethod.BUILTIN
    assert et.shared().running  # the independent reader checked the write
    et.close_shared()
    assert not et.shared().running


def many_photos(samples: Path, folder: Path, count: int) -> list[Path]:
    sources = sorted((samples / "jpg" / "gps").glob("*.jpg"))
    folder.mkdir()
    photos = []
    for i in range(count):
        photo = folder / f"IMG_{i:04d}.jpg"
        shutil.copyfile(sources[i % len(sources)], photo)
        photo.chmod(0o644)
        photos.append(photo)
    return photos


def start_write(folder: Path, state: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "LOCDIFF_STATE_DIR": str(state)}
    command = ["gps", "write", str(folder), "--lat", "1", "--lon", "2", *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "trainer", *command],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@linux_only
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_no_exiftool_outlives_a_stopped_write(samples, tmp_path, marked_exiftool, sig):
    folder = tmp_path / "photos"
    photos = many_photos(samples, folder, 80)
    proc = start_write(folder, tmp_path / "state", "--backend", "exiftool")
    try:
        started = wait_until(lambda: len(list(folder.glob("*_original"))) >= 3, 60)
        assert started, proc.communicate(timeout=60)
        assert processes_mentioning(marked_exiftool)
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert wait_until(lambda: processes_mentioning(marked_exiftool) == [], 10)
    if sig is signal.SIGTERM:
        assert proc.returncode == 0, err
        assert "stopped by SIGTERM" in err and "files done" in err
        assert not [p for p in folder.iterdir() if is_leftover_name(p.name)]
        done = len(list(folder.glob("*_original")))
        assert 3 <= done < len(photos) and f"{done} of {len(photos)} files done" in err
    else:
        assert proc.returncode == -signal.SIGKILL
    # the next batch sweeps whatever the killed one left and finishes the job
    again = start_write(folder, tmp_path / "state", "--backend", "builtin")
    _out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert not [p for p in folder.iterdir() if is_leftover_name(p.name)]


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temp_names_carry_the_pid_and_match_the_sweep_pattern(tmp_path):
    temp = temp_path_for(tmp_path / "IMG_0016.jpg")
    assert temp.name.startswith(f".IMG_0016.locdiff-{os.getpid()}-") and temp.suffix == ".jpg"
    assert is_leftover_name(temp.name)
    for name in ("IMG_0016.jpg", ".IMG_0016.locdiff-zz.jpg", "IMG.locdiff-1-abcdef12.jpg"):
        assert not is_leftover_name(name)


@pytest.mark.skipif(os.name == "nt", reason="process ids are not checked on Windows")
def test_sweep_removes_only_temps_of_ended_or_old_writes(tmp_path):
    photos, other = tmp_path / "photos", tmp_path / "elsewhere"
    photos.mkdir()
    other.mkdir()
    gone = dead_pid()

    def make(folder: Path, name: str, age: float = 0.0) -> Path:
        path = folder / name
        path.write_bytes(b"partial")
        stamp = time.time() - age
        os.utime(path, (stamp, stamp))
        return path

    removable = [
        make(photos, f".IMG_0016.locdiff-{gone}-0123abcd.jpg"),  # its writer has ended
        make(photos, ".IMG_0017.locdiff-89abcdef.xmp", STALE_AFTER_S + 60),  # old, no pid
        make(photos, f".IMG_0018.locdiff-{os.getpid()}-0123abcd.jpg", STALE_AFTER_S + 60),
    ]
    kept = [
        make(photos, f".IMG_0019.locdiff-{os.getpid()}-0123abcd.jpg"),  # a running write's
        make(photos, ".IMG_0020.locdiff-89abcdef.jpg"),  # recent, no pid
        make(photos, "IMG_0021.locdiff-1-0123abcd.jpg", STALE_AFTER_S + 60),  # not hidden
        make(photos, ".IMG_0022.jpg", STALE_AFTER_S + 60),
        make(other, f".IMG_0023.locdiff-{gone}-0123abcd.jpg"),  # not a folder being written
    ]
    (photos / f".dir.locdiff-{gone}-0123abcd.jpg").mkdir()  # folders are never removed
    link = photos / f".link.locdiff-{gone}-0123abcd.jpg"
    link.symlink_to(kept[0])
    assert sorted(find_leftovers([photos])) == sorted(removable)
    assert sorted(sweep_leftovers([photos, photos / "missing"])) == sorted(removable)
    assert not any(p.exists() for p in removable)
    assert all(p.exists() for p in kept) and link.is_symlink()


def test_folders_of_includes_a_linked_photos_real_folder(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.jpg").write_bytes(b"x")
    (tmp_path / "view").mkdir()
    (tmp_path / "view" / "a.jpg").symlink_to(real / "a.jpg")
    assert folders_of([tmp_path / "view" / "a.jpg"]) == [tmp_path / "view", real]
