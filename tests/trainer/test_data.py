import json
import os

import numpy as np
import pytest
import torch

from trainer.data import DatasetError, EmbeddingSet, load_embeddings, save_embeddings

ENCODER = {"name": "ViT-L-14", "pretrained": "openai", "dim": 4}


def raw(path, **arrays):
    np.savez(path, **arrays)
    return path


def error(path) -> str:
    with pytest.raises(DatasetError) as info:
        load_embeddings(path)
    return str(info.value)


def test_round_trip(tmp_path, arrays):
    path = save_embeddings(
        tmp_path / "train.npz", arrays["embedding"], arrays["lat"], arrays["lon"],
        ids=arrays["id"], encoder=ENCODER,
    )  # fmt: skip
    data = load_embeddings(path)
    assert isinstance(data, EmbeddingSet)
    assert len(data) == 5 and data.dim == 4
    assert data.embedding.dtype == np.float32 and data.lat.dtype == np.float64
    np.testing.assert_array_equal(data.embedding, arrays["embedding"])
    np.testing.assert_array_equal(data.lat, arrays["lat"])
    np.testing.assert_array_equal(data.lon, arrays["lon"])
    assert data.ids.tolist() == arrays["id"].tolist()
    assert data.encoder == ENCODER
    assert data.files == (path,)
    assert [p.name for p in tmp_path.iterdir()] == ["train.npz"]  # no temporary left behind


def test_round_trip_from_tensors_keeps_half_precision(tmp_path):
    emb = torch.randn(3, 2, dtype=torch.float16)
    path = save_embeddings(tmp_path / "h.npz", emb, torch.zeros(3), torch.tensor([0, 190, -181]))
    with np.load(path) as stored:
        assert stored["embedding"].dtype == np.float16
    data = load_embeddings(path)
    np.testing.assert_array_equal(data.embedding, emb.float().numpy())
    assert data.lon.tolist() == [0.0, -170.0, 179.0]
    assert data.ids.tolist() == ["h:0", "h:1", "h:2"]
    assert data.encoder is None


def test_longitude_is_wrapped_not_rejected(tmp_path, arrays):
    arrays["lon"] = np.array([180.0, 190.0, -540.0, 359.5, -180.0])
    data = load_embeddings(raw(tmp_path / "a.npz", **arrays))
    assert data.lon.tolist() == [-180.0, -170.0, -180.0, -0.5, -180.0]


def test_shards_in_name_order_with_generated_ids(tmp_path, arrays):
    folder = tmp_path / "shards"
    folder.mkdir()
    emb = arrays["embedding"]
    raw(folder / "b.npz", embedding=emb[2:], lat=arrays["lat"][2:], lon=arrays["lon"][2:])
    raw(folder / "a.npz", embedding=emb[:2], lat=arrays["lat"][:2], lon=arrays["lon"][:2])
    (folder / "notes.txt").write_text("ignored")
    raw(folder / ".hidden.npz", embedding=emb[:1], lat=arrays["lat"][:1], lon=arrays["lon"][:1])
    data = load_embeddings(folder)
    assert data.files == (folder / "a.npz", folder / "b.npz")
    np.testing.assert_array_equal(data.embedding, emb)
    assert data.ids.tolist() == ["a:0", "a:1", "b:0", "b:1", "b:2"]
    np.testing.assert_array_equal(data.lat, arrays["lat"])


def test_ids_as_bytes_and_integers(tmp_path, arrays):
    arrays["id"] = np.array([b"x", b"y", b"z", b"w", b"v"])
    assert load_embeddings(raw(tmp_path / "b.npz", **arrays)).ids.tolist() == list("xyzwv")
    arrays["id"] = np.arange(10, 15)
    ids = load_embeddings(raw(tmp_path / "i.npz", **arrays)).ids
    assert ids.tolist() == ["10", "11", "12", "13", "14"]


def test_missing_arrays(tmp_path, arrays):
    del arrays["lat"], arrays["lon"]
    msg = error(raw(tmp_path / "m.npz", **arrays))
    assert "m.npz" in msg and "'lat', 'lon'" in msg and "found: embedding, id" in msg


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("embedding", np.zeros(5, np.float32), "'embedding' has shape (5,); it must be (N, D)"),
        ("embedding", np.zeros((5, 4), np.int64), "'embedding' has dtype int64; it must be float"),
        ("embedding", np.zeros((5, 0), np.float32), "'embedding' has 0 columns"),
        ("lat", np.zeros((5, 1)), "array 'lat' has shape (5, 1); it must be (N,)"),
        ("lon", np.array(["a"] * 5), "array 'lon' has dtype <U1; it must hold numbers"),
        ("lon", np.zeros(4), "array 'lon' has 4 rows but 'embedding' has 5 (row 4 is the first"),
        ("id", np.array(["a", "b"]), "array 'id' has 2 rows but 'embedding' has 5"),
        ("id", np.array(["a", "b", "", "d", "e"]), "array 'id' row 2 is empty"),
        ("id", np.zeros(5), "array 'id' has dtype float64; it must hold strings"),
        ("id", np.array(["a", "b", "c", "b", "e"]), "row 3: array 'id' repeats 'b' from"),
        ("encoder", np.array("{not json"), "array 'encoder' is not valid JSON"),
        ("encoder", np.array("[1, 2]"), "array 'encoder' must hold a JSON object"),
        ("encoder", np.array(["{}"]), "array 'encoder' has shape (1,)"),
        ("encoder", np.array('{"dim": 768}'), "'encoder' says dim 768 but 'embedding' has 4"),
    ],
)  # fmt: skip
def test_malformed_arrays(tmp_path, arrays, name, value, expected):
    arrays[name] = value
    msg = error(raw(tmp_path / "bad.npz", **arrays))
    assert msg.startswith(str(tmp_path / "bad.npz"))
    assert expected in msg


@pytest.mark.parametrize(
    ("name", "row", "value", "expected"),
    [
        ("lat", 3, np.nan, "array 'lat' row 3 is nan; coordinates must be finite"),
        ("lon", 1, np.inf, "array 'lon' row 1 is inf; coordinates must be finite"),
        ("lat", 2, 91.5, "lat row 2 is 91.5, outside [-90, 90] degrees"),
        ("lat", 4, -90.001, "lat row 4 is -90.001, outside [-90, 90]"),
    ],
)
def test_bad_coordinates(tmp_path, arrays, name, row, value, expected):
    arrays[name][row] = value
    assert expected in error(raw(tmp_path / "c.npz", **arrays))


def test_non_finite_embedding_names_row_and_column(tmp_path, arrays):
    arrays["embedding"][3, 2] = np.nan
    arrays["embedding"][4, 0] = np.inf
    assert "array 'embedding' row 3, column 2 is" in error(raw(tmp_path / "e.npz", **arrays))
    # float64 values beyond float32's range are not finite once narrowed
    arrays["embedding"] = np.ones((5, 4))
    arrays["embedding"][1, 1] = 1e300
    msg = error(raw(tmp_path / "f.npz", **arrays))
    assert "row 1, column 1" in msg and "not a finite float32" in msg


def test_object_arrays_are_never_unpickled(tmp_path, arrays):
    arrays["id"] = np.array(["a", 1, None, "d", "e"], dtype=object)
    np.savez(tmp_path / "o.npz", **arrays)  # numpy pickles object arrays
    msg = error(tmp_path / "o.npz")
    assert "o.npz: array 'id' holds Python objects" in msg and "dtype=str" in msg


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "not a .npz archive"),
        (b"embedding,lat,lon\n1,2,3\n", "not a .npz archive"),
        (b"PK\x03\x04 a broken zip", "not a .npz archive"),
    ],
)
def test_not_an_npz_file(tmp_path, content, expected):
    (tmp_path / "x.npz").write_bytes(content)
    msg = error(tmp_path / "x.npz")
    assert msg.startswith(str(tmp_path / "x.npz")) and expected in msg


def test_npy_file_and_damaged_member(tmp_path, arrays):
    np.save(tmp_path / "one.npy", arrays["embedding"])
    assert "holds a single .npy array" in error(tmp_path / "one.npy")
    path = raw(tmp_path / "d.npz", **arrays)
    data = bytearray(path.read_bytes())
    offset = data.index(arrays["embedding"].tobytes()[:16])
    data[offset : offset + 8] = b"\xff" * 8  # the zip's CRC no longer matches
    path.write_bytes(bytes(data))
    assert "array 'embedding' is damaged" in error(path)


def test_missing_path_and_empty_folder(tmp_path):
    assert "no such file or directory" in error(tmp_path / "nope.npz")
    (tmp_path / "empty").mkdir()
    assert "holds no .npz shards" in error(tmp_path / "empty")


def test_empty_dataset(tmp_path):
    path = raw(tmp_path / "z.npz", embedding=np.zeros((0, 3), np.float32), lat=[], lon=[])
    assert "holds no rows" in error(path)


def test_shards_must_agree(tmp_path, arrays):
    folder = tmp_path / "s"
    folder.mkdir()
    lat, lon = arrays["lat"][:2], arrays["lon"][:2]
    raw(folder / "0.npz", embedding=np.zeros((2, 4), np.float32), lat=lat, lon=lon)
    raw(folder / "1.npz", embedding=np.zeros((2, 3), np.float32), lat=lat, lon=lon)
    msg = error(folder)
    assert "1.npz: embedding has 3 columns but" in msg and "0.npz has 4" in msg

    enc = np.asarray(json.dumps(ENCODER))
    raw(folder / "1.npz", embedding=np.zeros((2, 4), np.float32), lat=lat, lon=lon, encoder=enc)
    msg = error(folder)
    assert "1.npz: encoder {'name': 'ViT-L-14'" in msg and "differs from" in msg

    raw(folder / "0.npz", embedding=np.zeros((2, 4), np.float32), lat=lat, lon=lon, encoder=enc)
    raw(folder / "1.npz", embedding=np.ones((2, 4), np.float32), lat=lat, lon=lon, encoder=enc,
        id=np.array(["1:0", "0:1"]))  # fmt: skip
    msg = error(folder)
    assert msg.startswith(f"{folder / '1.npz'} row 1: array 'id' repeats '0:1'")
    assert f"from {folder / '0.npz'} row 1" in msg


def test_save_validates_and_leaves_nothing_on_error(tmp_path, arrays):
    with pytest.raises(DatasetError, match="lat row 1 is 95"):
        save_embeddings(tmp_path / "v.npz", arrays["embedding"], [0, 95, 0, 0, 0], arrays["lon"])
    with pytest.raises(DatasetError, match=r"must end in \.npz"):
        save_embeddings(tmp_path / "v.np", arrays["embedding"], arrays["lat"], arrays["lon"])
    with pytest.raises(DatasetError, match="not JSON-serialisable"):
        save_embeddings(
            tmp_path / "v.npz", arrays["embedding"], arrays["lat"], arrays["lon"],
            encoder={"dim": object()},
        )  # fmt: skip
    assert os.listdir(tmp_path) == []


def test_save_replaces_an_existing_file(tmp_path, arrays):
    path = tmp_path / "r.npz"
    save_embeddings(path, arrays["embedding"], arrays["lat"], arrays["lon"])
    save_embeddings(path, arrays["embedding"][:2], arrays["lat"][:2], arrays["lon"][:2])
    assert len(load_embeddings(path)) == 2
    assert os.listdir(tmp_path) == ["r.npz"]


def test_feature_norms_round_trip_across_shards(tmp_path, arrays):
    folder = tmp_path / "shards"
    folder.mkdir()
    unit = arrays["embedding"] / np.linalg.norm(arrays["embedding"], axis=1, keepdims=True)
    norm = np.array([10.0, 20.0, 30.0, 40.0, 50.0], np.float32)
    save_embeddings(folder / "a.npz", unit[:2], arrays["lat"][:2], arrays["lon"][:2], norm=norm[:2])
    save_embeddings(folder / "b.npz", unit[2:], arrays["lat"][2:], arrays["lon"][2:], norm=norm[2:])
    data = load_embeddings(folder)
    np.testing.assert_array_equal(data.norm, norm)
    np.testing.assert_allclose(data.raw_features(), unit * norm[:, None], rtol=1e-6)
    # one shard without norms: the dataset has none, and says how to get the raw features
    save_embeddings(folder / "c.npz", unit[:1], [0.0], [0.0], ids=["c"])
    with pytest.raises(DatasetError, match="no 'norm' array"):
        load_embeddings(folder).raw_features()


@pytest.mark.parametrize("bad", [[1.0, 0.0, 1, 1, 1], [1.0, np.nan, 1, 1, 1], [1.0, 2.0]])
def test_bad_feature_norms_are_named(tmp_path, arrays, bad):
    with pytest.raises(DatasetError, match="'norm'"):
        save_embeddings(
            tmp_path / "x.npz", arrays["embedding"], arrays["lat"], arrays["lon"], norm=bad
        )
