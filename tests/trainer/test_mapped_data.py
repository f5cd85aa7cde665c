"""Memory-mapped datasets (trainer.mapped_data): row for row what the in-memory reader reads,
the same refusals, the rows' values checked as they are read, compressed shards refused with
the command that converts them, and the epoch order and fingerprint the trainer has always
used, read in pieces."""

import hashlib
import os

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler

from trainer import run_state, split
from trainer.cli import main
from trainer.data import DatasetError, load_embeddings, save_embeddings
from trainer.mapped_data import Column, convert_dataset, open_embeddings

ENCODER = {"name": "ViT-B-32", "pretrained": "openai", "dim": 6}


@pytest.fixture
def folder(tmp_path):
    """Three shards: float16 with ids, float32 without ids (generated), float16 with long ids."""
    gen = np.random.default_rng(3)
    out = tmp_path / "data"
    out.mkdir()
    for k, (n, dtype, ids) in enumerate(
        [(7, np.float16, "a"), (4, np.float32, None), (9, np.float16, "a much longer id ")]
    ):
        save_embeddings(
            out / f"shard-{k:05d}.npz",
            gen.standard_normal((n, 6)).astype(dtype),
            gen.uniform(-90, 90, n),
            gen.uniform(-300, 300, n),  # some outside [-180, 180): wrapped the same way
            ids=None if ids is None else [f"{ids}{k}-{i}" for i in range(n)],
            encoder=ENCODER,
            norm=gen.uniform(0.5, 2.0, n),
        )
    return out


def test_mapped_equals_in_memory_row_for_row(folder):
    memory, mapped = load_embeddings(folder), open_embeddings(folder)
    assert isinstance(mapped.embedding, Column) and len(mapped) == len(memory) == 20
    assert mapped.embedding.shape == memory.embedding.shape and mapped.dim == 6
    np.testing.assert_array_equal(np.asarray(mapped.embedding), memory.embedding)
    np.testing.assert_array_equal(np.asarray(mapped.ids), memory.ids)
    for name in ("lat", "lon", "norm"):
        np.testing.assert_array_equal(getattr(mapped, name), getattr(memory, name))
    assert mapped.encoder == memory.encoder and mapped.files == memory.files
    rows = np.random.default_rng(0).permutation(20)[:11]
    np.testing.assert_array_equal(mapped.embedding[rows], memory.embedding[rows])
    assert mapped.embedding[rows].dtype == np.float32
    assert mapped.ids[rows].tolist() == memory.ids[rows].tolist()
    assert mapped.ids[8] == "shard-00001:1" and mapped.ids[-1] == memory.ids[-1]
    assert mapped.embedding[np.array([], dtype=np.int64)].shape == (0, 6)
    np.testing.assert_array_equal(mapped.raw_features(), memory.raw_features())


def test_a_single_file_maps_too(tmp_path, arrays):
    path = save_embeddings(
        tmp_path / "one.npz",
        **{k: arrays[k] for k in ("lat", "lon")},
        embedding=arrays["embedding"],
        ids=arrays["id"],
    )
    mapped = open_embeddings(path)
    np.testing.assert_array_equal(mapped.embedding[[4, 0]], arrays["embedding"][[4, 0]])
    assert mapped.ids[[1]].tolist() == ["sydney"]


def test_the_embedding_stays_in_the_file(folder):
    """What is mapped is a view of the file's bytes, not a copy."""
    part = open_embeddings(folder).embedding.parts[0]
    assert not part.flags.owndata and not part.flags.writeable


def _refusal(path) -> str:
    with pytest.raises(DatasetError) as info:
        open_embeddings(path)
    return str(info.value)


def test_refusals_match_the_in_memory_reader(tmp_path, arrays):
    cases = {
        "missing.npz": {k: v for k, v in arrays.items() if k != "lat"},
        "shape.npz": {**arrays, "embedding": arrays["embedding"][:, 0]},
        "ints.npz": {**arrays, "embedding": np.ones((5, 4), dtype=np.int32)},
        "lat.npz": {**arrays, "lat": np.array([0, 0, 95.0, 0, 0])},
        "rows.npz": {**arrays, "lon": arrays["lon"][:3]},
        "objects.npz": {**arrays, "id": np.array(["a", 1, None, "b", "c"], dtype=object)},
    }
    for name, content in cases.items():
        path = tmp_path / name
        np.savez(path, **content)
        with pytest.raises(DatasetError) as memory:
            load_embeddings(path)
        assert _refusal(path) == str(memory.value), name
    (tmp_path / "text.npz").write_text("not a dataset")
    assert "text.npz" in _refusal(tmp_path / "text.npz")


def test_repeated_ids_across_shards_are_named(folder):
    first = load_embeddings(folder / "shard-00000.npz")
    save_embeddings(
        folder / "shard-00003.npz",
        first.embedding[:2],
        first.lat[:2],
        first.lon[:2],
        ids=["new", first.ids[1]],
        encoder=ENCODER,
    )
    message = _refusal(folder)
    assert "shard-00003.npz row 1" in message and "repeats 'a0-1'" in message
    assert "shard-00000.npz row 1" in message
    with pytest.raises(DatasetError) as memory:
        load_embeddings(folder)
    assert message == str(memory.value)


def test_a_non_finite_value_is_named_when_its_row_is_read(folder):
    gen = np.random.default_rng(1)
    emb = gen.standard_normal((3, 6)).astype(np.float16)
    emb[2, 4] = np.inf
    np.savez(
        folder / "shard-00003.npz",
        embedding=emb,
        lat=np.zeros(3),
        lon=np.zeros(3),
        id=np.array(["x", "y", "z"]),
        encoder=np.asarray('{"dim": 6, "name": "ViT-B-32", "pretrained": "openai"}'),
    )
    data = open_embeddings(folder)  # opening reads no embedding values
    assert data.embedding[np.arange(20)].shape == (20, 6)
    with pytest.raises(
        DatasetError,
        match=r"shard-00003.npz: array 'embedding' row 2, column 4 "
        r"is inf",
    ):
        data.embedding[np.array([3, 22])]


def test_a_compressed_shard_gets_the_conversion_command_and_converts_once(folder, capsys):
    memory = load_embeddings(folder)
    original = load_embeddings(folder / "shard-00001.npz")
    with np.load(folder / "shard-00001.npz") as archive:
        arrays = {k: archive[k] for k in archive.files}
    np.savez_compressed(folder / "shard-00001.npz", **arrays)
    message = _refusal(folder)
    assert f"{folder / 'shard-00001.npz'}: array " in message and "compressed" in message
    assert f"`locdiff dataset convert {folder}`" in message
    untouched = (folder / "shard-00000.npz").stat().st_mtime_ns
    assert main(["dataset", "convert", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"converted {folder / 'shard-00001.npz'}" in out and "1 of 3 shard(s)" in out
    assert (folder / "shard-00000.npz").stat().st_mtime_ns == untouched
    mapped = open_embeddings(folder)
    np.testing.assert_array_equal(np.asarray(mapped.embedding), memory.embedding)
    np.testing.assert_array_equal(
        load_embeddings(folder / "shard-00001.npz").embedding, original.embedding
    )
    assert [c.converted for c in convert_dataset(folder)] == [False, False, False]
    assert sorted(os.listdir(folder)) == [f"shard-{k:05d}.npz" for k in range(3)]


def test_dataset_info(folder, capsys):
    assert main(["dataset", "info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "20 rows of width 6 (float16)" in out and "shards: 3" in out
    assert '"name": "ViT-B-32"' in out and "(norm): yes" in out


@pytest.mark.parametrize("world", [1, 2, 3])
def test_the_epoch_order_is_distributed_samplers(world):
    """Steps resumed from any earlier run's state read the rows they always read."""
    n, batch, seed = 97, 24, 5
    for epoch in (0, 3):
        g = torch.Generator()
        g.manual_seed(seed + epoch)
        order = torch.randperm(n, generator=g)
        for rank in range(world):
            sampler = DistributedSampler(range(n), world, rank, shuffle=True, seed=seed)
            sampler.set_epoch(epoch)
            theirs = torch.tensor(list(sampler))
            local = batch // world
            position = torch.arange(local) * world + rank
            for step in range(n // batch):
                ours = order[step * batch + position]
                assert ours.tolist() == theirs[step * local : (step + 1) * local].tolist()


def test_the_fingerprint_read_in_pieces_is_the_whole_ids_hash(folder, monkeypatch):
    data = open_embeddings(folder)
    rows = np.array([5, 2, 19, 8, 0, 11, 13])
    expected = hashlib.sha256("\n".join(load_embeddings(folder).ids[rows]).encode()).hexdigest()
    monkeypatch.setattr(run_state, "_PIECE", 3)
    assert run_state.fingerprint(data.ids, rows, 6) == {"rows": 7, "dim": 6, "ids_sha256": expected}


def test_a_split_reads_back_in_pieces(folder, tmp_path, monkeypatch):
    data = open_embeddings(folder)
    made = split.split_by_distance(data.lat, data.lon, 0.3, 0.0, seed=1)
    path = tmp_path / "split.json"
    split.write_split(path, made, data.ids, {})
    monkeypatch.setattr(split, "_PIECE", 4)
    back = split.read_split(path, data.ids, data.lat, data.lon, 0.0)
    assert back.val.tolist() == made.val.tolist() and back.train.tolist() == made.train.tolist()


def test_rows_read_by_position_equal_rows_read_through_the_map(folder, monkeypatch):
    from trainer import mapped_data

    data = open_embeddings(folder)
    assert data.embedding.readers is not None or not hasattr(os, "preadv")
    rows = np.array([19, 0, 7, 7, 10, 3])
    by_position = data.embedding[rows]
    monkeypatch.setattr(mapped_data, "_PREAD_ROWS", 0)
    np.testing.assert_array_equal(data.embedding[rows], by_position)
    np.testing.assert_array_equal(by_position, load_embeddings(folder).embedding[rows])


@pytest.mark.skipif(not hasattr(os, "preadv"), reason="positional reads are POSIX")
def test_a_shard_cut_short_after_opening_is_named(folder):
    data = open_embeddings(folder)
    path = folder / "shard-00002.npz"
    reader = data.embedding.readers[2]
    before = data.embedding[np.array([11, 13])]
    with open(path, "r+b") as fh:  # what a copy still in progress or a full disk leaves
        fh.truncate(reader.offset + 3 * reader.row_bytes)
    np.testing.assert_array_equal(data.embedding[np.array([11, 13])], before)
    with pytest.raises(DatasetError, match=r"shard-00002.npz: cut short at array 'embedding'"):
        data.embedding[np.array([19])]
