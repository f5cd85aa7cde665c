"""Writing confirmed locations into photos and undoing it (Qt-free part)."""

import pytest

from app.model.session import WriteItem
from app.model.settings import Settings
from app.workers.writeback import describe_write, journal_root, undo_last_write, write_locations
from locdiff_core.photo import read_gps


def items_for(paths, positions):
    return [
        WriteItem(p, str(p.resolve()), lat, lon)
        for p, (lat, lon) in zip(paths, positions, strict=True)
    ]


def test_write_many_positions_then_undo_restores_every_byte(gps_photos):
    paths = gps_photos[:3]
    before = {p: p.read_bytes() for p in paths}
    positions = [(48.8582, 2.2945), (-33.8568, 151.2153), (48.8582, 2.2945)]
    results = write_locations(items_for(paths, positions), Settings())
    assert [key for key, _ in results] == [str(p.resolve()) for p in paths]
    assert all(r.ok for _, r in results), [describe_write(r) for _, r in results]
    for path, (lat, lon) in zip(paths, positions, strict=True):
        fix = read_gps(path)
        assert fix.lat == pytest.approx(lat, abs=1e-6) and fix.lon == pytest.approx(lon, abs=1e-6)
        assert path.with_name(path.name + "_original").read_bytes() == before[path]
    assert "original kept as DSCN" in describe_write(results[0][1])
    undone = undo_last_write()
    assert sorted(r.path for r in undone) == sorted(paths) and all(r.ok for r in undone)
    assert {p: p.read_bytes() for p in paths} == before
    with pytest.raises(ValueError, match="nothing to undo"):
        undo_last_write()


def test_a_new_write_forgets_the_previous_batch(gps_photos):
    first, second = gps_photos[:2]
    original_second = second.read_bytes()
    write_locations(items_for([first], [(1.0, 2.0)]), Settings())
    after_first = first.read_bytes()
    write_locations(items_for([second], [(3.0, 4.0)]), Settings())
    undo_last_write()
    assert second.read_bytes() == original_second and first.read_bytes() == after_first
    assert journal_root().parent.name == "data"  # under LOCDIFF_DATA_DIR


def test_failures_are_per_file(gps_photos, tmp_path):
    missing = tmp_path / "gone.jpg"
    results = write_locations(items_for([gps_photos[0], missing], [(1, 2), (1, 2)]), Settings())
    ok, bad = (r for _, r in results)
    assert ok.ok and not bad.ok
    assert describe_write(bad).startswith("write failed: ") and "not found" in describe_write(bad)


def test_without_backup_there_is_no_copy(gps_photos):
    path = gps_photos[0]
    write_locations(items_for([path], [(5.0, 6.0)]), Settings(write_backup=False))
    assert not path.with_name(path.name + "_original").exists()


def test_a_damaged_journal_is_reported_and_kept(gps_photos):
    [photo] = gps_photos[:1]
    write_locations(items_for([photo], [(1.0, 2.0)]), Settings())
    [index] = journal_root().rglob("batch.jsonl")
    index.write_bytes(b"{not json\n")
    with pytest.raises(ValueError, match=str(index.name)):
        undo_last_write()
    assert index.read_bytes() == b"{not json\n"  # the user's undo data is not deleted


def test_undo_can_remove_the_backups_it_no_longer_needs(gps_photos):
    path = gps_photos[0]
    before = path.read_bytes()
    write_locations(items_for([path], [(5.0, 6.0)]), Settings())
    backup = path.with_name(path.name + "_original")
    assert backup.read_bytes() == before
    undo_last_write(remove_backups=True)
    assert path.read_bytes() == before and not backup.exists()


def test_a_backup_that_differs_from_the_restored_photo_is_kept(gps_photos):
    path = gps_photos[0]
    write_locations(items_for([path], [(5.0, 6.0)]), Settings())
    backup = path.with_name(path.name + "_original")
    backup.write_bytes(b"someone else's file")  # not ours to delete
    undo_last_write(remove_backups=True)
    assert backup.read_bytes() == b"someone else's file"
