"""The undo journal: one batch at a time, never destroyed by a batch that changed nothing, and
a clear message (never a traceback) when it is damaged."""

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from photo_samples import writable_copy
from PIL import Image

from locdiff_core.photo.journal import Journal, JournalBusyError, JournalError
from locdiff_core.photo.undo import undo_last_batch
from locdiff_core.photo.writing import (
    WriteConfig,
    WriteMethod,
    WriterBackend,
    remove_gps,
    write_gps,
)

REPO = Path(__file__).parents[3]
BUILTIN = WriteConfig(backend=WriterBackend.BUILTIN)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def photo(samples, tmp_path):
    return writable_copy(samples / "jpg" / "gps" / "DSCN0010.jpg", tmp_path / "photos")


def recorded_journal(root: Path, files: list[Path]) -> Journal:
    journal = Journal(root)
    journal.begin("write")
    for path in files:
        journal.record(path, sha(b"new"), keep_copy=True)
    journal.close()
    return journal


def test_a_second_batch_is_refused_while_one_runs_and_changes_nothing(tmp_path):
    first, second = Journal(tmp_path), Journal(tmp_path)
    first.begin("write")
    with pytest.raises(JournalBusyError) as info:
        second.begin("remove")
    message = str(info.value)
    assert f"another GPS write batch (pid {os.getpid()}) is running" in message
    assert "wait for it to finish" in message and str(first.folder) in message
    with pytest.raises(JournalBusyError, match="GPS write batch"):
        second.lock()  # an undo is refused too
    first.close()
    with second:
        second.begin("remove")  # free again once the first batch ended


def test_a_batch_in_another_process_holds_the_journal_until_that_process_ends(photo, tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from pathlib import Path
                from locdiff_core.photo.journal import Journal
                journal = Journal(Path({str(tmp_path)!r}))
                journal.begin("write")
                print("locked", flush=True)
                time.sleep(60)
                """
            ),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = photo.read_bytes()
        config = WriteConfig(backend=WriterBackend.BUILTIN, journal_dir=tmp_path)
        with pytest.raises(JournalBusyError, match=f"pid {holder.pid}"):
            write_gps([photo], 1.0, 2.0, config=config)
        assert photo.read_bytes() == before
        assert not photo.with_name(photo.name + "_original").exists()
    finally:
        holder.kill()  # killed: the system drops its lock, nothing stale is left
        holder.wait()
    [result] = write_gps([photo], 1.0, 2.0, config=config)
    assert result.ok


def test_a_batch_that_records_nothing_keeps_the_previous_batch_undoable(photo):
    original = photo.read_bytes()
    [written] = write_gps([photo], 1.0, 2.0, config=BUILTIN)
    assert written.ok
    no_gps = photo.with_name("plain.jpg")
    Image.new("RGB", (16, 16), (9, 99, 199)).save(no_gps)
    [unchanged] = remove_gps([no_gps], config=BUILTIN)  # nothing to remove: nothing recorded
    assert unchanged.ok and unchanged.value.method is WriteMethod.UNCHANGED
    [restored] = undo_last_batch()
    assert restored.ok and photo.read_bytes() == original


def test_begin_keeps_the_previous_batch_until_the_first_record(tmp_path):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"before")
    recorded_journal(tmp_path, [photo])
    with Journal(tmp_path) as journal:
        journal.begin("remove")
        assert journal.load()[0] == "write"  # still the previous batch
        other = tmp_path / "b.jpg"
        other.write_bytes(b"b")
        journal.record(other, sha(b"new b"), keep_copy=True)
        action, _when, entries = journal.load()
    assert action == "remove" and [e.path for e in entries] == [str(other)]


def test_the_index_is_readable_while_a_batch_runs(tmp_path):
    files = [tmp_path / f"{i}.jpg" for i in range(3)]
    for f in files:
        f.write_bytes(f.name.encode())
    writer = Journal(tmp_path)
    writer.begin("write")
    for count, path in enumerate(files, 1):
        writer.record(path, sha(b"new"), keep_copy=True)
        _action, _when, entries = Journal(tmp_path).load()  # another reader, mid-batch
        assert len(entries) == count
        assert (writer.folder / entries[-1].saved).read_bytes() == path.name.encode()
    writer.close()


def test_a_last_record_cut_short_by_a_crash_is_ignored(tmp_path):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"before")
    journal = recorded_journal(tmp_path, [photo])
    with open(journal.index, "a", encoding="utf-8") as f:
        f.write('{"path": "/x/b.jpg", "saved": "files/0000')  # the file it announced is intact
    _action, _when, entries = Journal(tmp_path).load()
    assert [e.path for e in entries] == [str(photo)]


def damage_cases(index: Path) -> dict:
    lines = index.read_text(encoding="utf-8").splitlines()
    entry = json.loads(lines[1])
    return {
        "cut in the middle": lines[0] + "\n" + lines[1][:20] + "\n" + lines[1] + "\n",
        "wrong types": lines[0] + "\n" + json.dumps({**entry, "written_sha256": 7}) + "\n",
        "not a record": lines[0] + "\n[1, 2, 3]\n",
        "unknown keys": lines[0] + "\n" + json.dumps({**entry, "mode": "x"}) + "\n",
        "escaping path": lines[0] + "\n" + json.dumps({**entry, "saved": "../../x"}) + "\n",
        "relative path": lines[0] + "\n" + json.dumps({**entry, "path": "a.jpg"}) + "\n",
        "no header": lines[1] + "\n",
        "bad header": json.dumps({"version": 1, "action": 3, "time": "t"}) + "\n",
        "empty": "",
        "not text": b"\xff\xfe\x00garbage\n",
    }


@pytest.mark.parametrize(
    "case",
    [
        "cut in the middle",
        "wrong types",
        "not a record",
        "unknown keys",
        "escaping path",
        "relative path",
        "no header",
        "bad header",
        "empty",
        "not text",
        "missing saved copy",
    ],
)
def test_a_damaged_journal_is_named_with_what_to_do(tmp_path, case):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"before")
    journal = recorded_journal(tmp_path, [photo])
    if case == "missing saved copy":
        for saved in (journal.folder / "files").iterdir():
            saved.unlink()
    else:
        content = damage_cases(journal.index)[case]
        if isinstance(content, bytes):
            journal.index.write_bytes(content)
        else:
            journal.index.write_text(content, encoding="utf-8")
    with pytest.raises(JournalError) as info:
        Journal(tmp_path).load()
    message = str(info.value)
    assert f"the undo journal {journal.index} is damaged (" in message
    assert f"move the folder {journal.folder} away" in message
    if case == "missing saved copy":
        assert str(photo) in message and "is missing" in message


def test_a_journal_from_another_version_says_so(tmp_path):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"before")
    journal = recorded_journal(tmp_path, [photo])
    journal.index.write_text(json.dumps({"version": 99, "action": "write", "time": "t"}) + "\n")
    with pytest.raises(JournalError, match="has format 99, this version reads 1"):
        Journal(tmp_path).load()


def test_a_damaged_journal_does_not_block_a_new_batch(photo, tmp_path):
    config = WriteConfig(backend=WriterBackend.BUILTIN, journal_dir=tmp_path)
    write_gps([photo], 1.0, 2.0, config=config)
    Journal(tmp_path).index.write_text("{not json\n", encoding="utf-8")
    [result] = write_gps([photo], 3.0, 4.0, config=config)
    assert result.ok
    [undone] = undo_last_batch(tmp_path)
    assert undone.ok and undone.value == "restored"


def test_fully_undone_journal_removes_its_folder_and_frees_the_lock(tmp_path):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"before")
    journal = recorded_journal(tmp_path, [photo])
    with Journal(tmp_path) as undo:
        undo.lock()
        assert undo.load() is not None
        undo.keep_only([])
    assert not journal.folder.exists() and Journal(tmp_path).load() is None
    with Journal(tmp_path) as again:
        again.begin("write")
