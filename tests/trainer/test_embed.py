"""``locdiff embed``: a folder of generated JPEGs with GPS (plus a corrupted one and one without
GPS) or a location CSV becomes shards and a manifest; interrupted runs resume."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from locdiff_core.image_encoder import EncoderConfig, ImageEncoder
from locdiff_core.photo.writing import BackupMode, WriteConfig, write_gps
from trainer import cli
from trainer.data import load_embeddings
from trainer.embed import EmbedConfig, build_dataset
from trainer.location_csv import BadRow, LocatedImage, read_location_csv
from trainer.manifest import MANIFEST, Outcome, ShardedWriter, latest, read_manifest

PLACES = {  # file -> (lat, lon)
    "arezzo.jpg": (43.4633, 11.8797),
    "sydney.jpg": (-33.8568, 151.2153),
    "trip/quito.jpg": (-0.1807, -78.4678),
    "trip/reykjavik.jpg": (64.1466, -21.9426),
    "trip/anchorage.jpg": (61.2181, -149.9003),
}


def picture(seed: int, size=(64, 48)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8))


@pytest.fixture
def photos(tmp_path):
    """Five geotagged JPEGs, one without GPS, one whose image data is cut off after its GPS,
    and a text file posing as a photo."""
    root = tmp_path / "photos"
    (root / "trip").mkdir(parents=True)
    config = WriteConfig(backup=BackupMode.NONE, journal_dir=tmp_path / "journal")
    for i, (name, (lat, lon)) in enumerate(PLACES.items()):
        picture(i).save(root / name, quality=90)
        assert write_gps([root / name], lat, lon, config=config)[0].ok
    picture(10).save(root / "no_gps.jpg")
    picture(11, (400, 300)).save(root / "cut.jpg", quality=90)
    assert write_gps([root / "cut.jpg"], 1.0, 2.0, config=config)[0].ok
    data = (root / "cut.jpg").read_bytes()
    (root / "cut.jpg").write_bytes(data[: len(data) // 3])  # GPS intact, pixels cut short
    (root / "notes.jpg").write_text("not a photo")
    return root


@pytest.fixture(scope="module")
def encoder(tiny_encoder):
    return ImageEncoder.load(tiny_encoder)


def outcomes(folder) -> dict[str, str]:
    return {k: e.outcome.value for k, e in latest(read_manifest(folder)).items()}


def test_a_photo_folder_becomes_shards_and_a_manifest(tmp_path, photos, encoder):
    out = tmp_path / "ds"
    config = EmbedConfig(out=out, photos=photos, batch_size=2, shard_size=2)
    summary = build_dataset(config, encoder)
    assert outcomes(out) == {
        **dict.fromkeys(PLACES, "embedded"),
        "no_gps.jpg": "no_gps",
        "cut.jpg": "unreadable",
        "notes.jpg": "unreadable",
    }
    assert summary.counts[Outcome.EMBEDDED] == 5 and summary.new[Outcome.UNREADABLE] == 2
    entries = latest(read_manifest(out))
    assert "truncated" in entries["cut.jpg"].reason or "damaged" in entries["cut.jpg"].reason
    assert sorted(p.name for p in out.glob("*.npz")) == [f"shard-0000{i}.npz" for i in range(3)]
    data = load_embeddings(out)
    assert sorted(data.ids) == sorted(PLACES) and data.encoder == encoder.identity
    for image_id, lat, lon in zip(data.ids, data.lat, data.lon, strict=True):
        assert (lat, lon) == pytest.approx(PLACES[image_id], abs=1e-6)
        assert entries[image_id].shard is not None
    direct = dict(encoder.embed_paths([photos / i for i in data.ids]))
    np.testing.assert_allclose(data.embedding, np.stack([direct[i] for i in range(5)]), atol=1e-6)


def test_a_photo_the_disk_refuses_is_recorded_and_the_run_goes_on(
    tmp_path, photos, encoder, monkeypatch
):
    import trainer.embed as embed_module

    real = embed_module.read_gps

    def flaky_disk(path):  # as a bad sector or a permission would (root reads anything)
        if Path(path).name == "sydney.jpg":
            raise OSError(5, "Input/output error", str(path))
        return real(path)

    monkeypatch.setattr(embed_module, "read_gps", flaky_disk)
    out = tmp_path / "ds"
    build_dataset(EmbedConfig(out=out, photos=photos, batch_size=2, shard_size=2), encoder)
    got = outcomes(out)
    assert got["sydney.jpg"] == "unreadable" and got["arezzo.jpg"] == "embedded"
    reason = latest(read_manifest(out))["sydney.jpg"].reason
    assert reason.startswith("the disk reported an input/output error while reading it")


def test_a_missing_csv_is_named_before_any_model_loads(tmp_path):
    config = EmbedConfig(out=tmp_path / "ds", csv=tmp_path / "typo.csv", images=tmp_path)
    with pytest.raises(ValueError, match=r"typo\.csv: no such CSV file"):
        config.validate()


def test_a_rerun_skips_what_is_done(tmp_path, photos, encoder):
    out = tmp_path / "ds"
    build_dataset(EmbedConfig(out=out, photos=photos), encoder)
    picture(20).save(photos / "new.jpg")
    write_gps(
        [photos / "new.jpg"],
        10.0,
        20.0,
        config=WriteConfig(backup=BackupMode.NONE, journal_dir=tmp_path / "j"),
    )
    again = build_dataset(EmbedConfig(out=out, photos=photos), encoder)
    assert dict(again.new) == {Outcome.EMBEDDED: 1} and again.skipped == 8
    assert len(load_embeddings(out)) == 6
    # a photo that gets its position later is embedded when failures are retried
    write_gps(
        [photos / "no_gps.jpg"],
        5.0,
        6.0,
        config=WriteConfig(backup=BackupMode.NONE, journal_dir=tmp_path / "j"),
    )
    retry = build_dataset(EmbedConfig(out=out, photos=photos, retry_failed=True), encoder)
    assert retry.new[Outcome.EMBEDDED] == 1 and retry.new[Outcome.UNREADABLE] == 2
    assert outcomes(out)["no_gps.jpg"] == "embedded" and len(load_embeddings(out)) == 7


@pytest.mark.parametrize("how", ["cancel", "interrupt"])
def test_an_interrupted_run_resumes_to_the_same_dataset(tmp_path, photos, encoder, how):
    config = EmbedConfig(out=tmp_path / "whole", photos=photos, batch_size=1, shard_size=2)
    build_dataset(config, encoder)
    stop = []

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "embedding" and done >= 4:  # 4 of 6 photos embedded (or failed)
            if how == "interrupt":
                raise KeyboardInterrupt
            stop.append(True)

    config = EmbedConfig(out=tmp_path / "ds", photos=photos, batch_size=1, shard_size=2)
    if how == "interrupt":
        with pytest.raises(KeyboardInterrupt):
            build_dataset(config, encoder, progress=progress)
    else:
        assert build_dataset(
            config, encoder, progress=progress, cancel=lambda: bool(stop)
        ).cancelled
    # arezzo and sydney are in shard 0; the third embedding was pending: kept only on cancel
    assert len(load_embeddings(config.out)) == (3 if how == "cancel" else 2)
    build_dataset(config, encoder)
    assert outcomes(config.out) == outcomes(tmp_path / "whole")
    a, b = load_embeddings(config.out), load_embeddings(tmp_path / "whole")
    np.testing.assert_array_equal(np.sort(a.ids), np.sort(b.ids))
    np.testing.assert_allclose(a.embedding[np.argsort(a.ids)], b.embedding[np.argsort(b.ids)])


def test_what_a_crash_leaves_is_repaired(tmp_path, photos, encoder):
    out = tmp_path / "ds"
    build_dataset(EmbedConfig(out=out, photos=photos, shard_size=2), encoder)
    # shard 1 holds anchorage and quito, shard 2 reykjavik; the manifest is cut inside quito's
    # line, so quito's line is torn, and shard 2 has no line at all
    lines = (out / MANIFEST).read_text().splitlines(keepends=True)
    cut = next(n for n, t in enumerate(lines) if '"trip/quito.jpg"' in t)
    (out / MANIFEST).write_text("".join(lines[:cut]) + lines[cut][:25])
    (out / ".shard-00003.npz.x1y2.tmp").write_bytes(b"half a shard")  # killed mid-write
    writer = ShardedWriter(out, encoder.identity, 2)
    assert not list(out.glob(".*.tmp")) and not (out / "shard-00002.npz").exists()
    assert list(load_embeddings(out / "shard-00001.npz").ids) == ["trip/anchorage.jpg"]
    assert (out / MANIFEST).read_text() == "".join(lines[:cut])
    assert sum(e.outcome is Outcome.EMBEDDED for e in writer.entries.values()) == 3
    build_dataset(EmbedConfig(out=out, photos=photos, shard_size=2), encoder)
    assert sorted(load_embeddings(out).ids) == sorted(PLACES)
    assert sorted(k for k, v in outcomes(out).items() if v == "embedded") == sorted(PLACES)


def test_another_encoder_cannot_add_to_a_dataset(tmp_path, photos, encoder, tiny_encoder):
    out = tmp_path / "ds"
    build_dataset(EmbedConfig(out=out, photos=photos), encoder)
    other_weights = tmp_path / "other.safetensors"
    from safetensors.torch import save_file

    state = {f"visual.{k}": v * 1.5 for k, v in encoder.tower.state_dict().items()}
    save_file({k: v.contiguous() for k, v in state.items()}, other_weights)
    other = ImageEncoder.load(EncoderConfig(tiny_encoder.model, None, other_weights, "cpu"))
    with pytest.raises(ValueError, match=r"was built with custom model tiny-vit.*new --out"):
        build_dataset(EmbedConfig(out=out, photos=photos), other)


CSV = """IMG_ID,AUTHOR,LAT,LON
a.jpg,someone,48.8566,2.3522
b.jpg,someone,-33.8688,151.2093
gone.jpg,someone,35.6762,139.6503
c.jpg,someone,north,2.0
d.jpg,someone,95.0,2.0
,someone,1.0,2.0
a.jpg,someone,1.0,2.0
"""


def test_a_location_csv_with_bad_rows(tmp_path, encoder):
    images = tmp_path / "images"
    images.mkdir()
    for i, name in enumerate(["a.jpg", "b.jpg", "c.jpg", "d.jpg"]):
        picture(i).save(images / name)
    table = tmp_path / "mp16.csv"
    table.write_text(CSV)
    out = tmp_path / "ds"
    summary = build_dataset(EmbedConfig(out=out, csv=table, images=images), encoder)
    assert dict(summary.counts) == {"embedded": 2, "missing": 1, "bad_row": 4}
    entries = latest(read_manifest(out))
    assert entries["gone.jpg"].outcome is Outcome.MISSING
    assert entries["c.jpg"].reason == f"{table} line 5: latitude 'north' is not a number"
    assert "line 6: latitude '95.0' is outside [-90, 90]" in entries["d.jpg"].reason
    assert entries[f"{table} line 7"].reason.endswith("the image id is empty")
    assert entries[f"{table} line 8"].reason.endswith("id 'a.jpg' repeats line 2")
    data = load_embeddings(out)
    assert sorted(data.ids) == ["a.jpg", "b.jpg"]


def test_csv_headers_are_matched_loosely(tmp_path):
    table = tmp_path / "t.tsv"
    table.write_text("\ufeffImage\tLatitude\tLongitude\nx/1.jpg\t1.5\t-2.5\n\n", encoding="utf-8")
    rows = list(read_location_csv(table, tmp_path / "root"))
    assert rows == [LocatedImage("x/1.jpg", tmp_path / "root" / "x/1.jpg", 1.5, -2.5)]
    table.write_text("IMG_ID,LAT\n1.jpg,2\n")
    with pytest.raises(ValueError, match=r"t\.tsv line 1: no longitude column .*found IMG_ID"):
        list(read_location_csv(table, tmp_path))
    table.write_text("id,lat,lon\n7\n")
    assert list(read_location_csv(table, tmp_path)) == [
        BadRow(f"{table} line 2", f"{table} line 2: 1 cells, too few for the header")
    ]


def embed_args(photos, out, *options) -> list[str]:
    return ["embed", "--photos", str(photos), "--out", str(out), "--device", "cpu", *options]


def test_the_command_prints_a_summary(tmp_path, photos, tiny_encoder, capsys):
    out = tmp_path / "ds"
    weights = ["--model", tiny_encoder.model, "--weights", str(tiny_encoder.weights)]
    args = embed_args(photos, out, *weights, "--workers", "1")
    assert cli.main(args) == 0
    captured = capsys.readouterr()
    assert f"{out}: 5 embedded, 1 no_gps, 2 unreadable, 0 missing, 0 bad_row" in captured.out
    assert "cut.jpg: unreadable:" in captured.out
    assert "embedding 100.0%" in captured.err and "ETA" in captured.err
    lines = [json.loads(t) for t in (out / MANIFEST).read_text().splitlines()]
    assert {t["key"] for t in lines} == {*PLACES, "no_gps.jpg", "cut.jpg", "notes.jpg"}
    assert cli.main(embed_args(photos, out, *weights, "--workers", "0")) == 0  # nothing new
    assert "this run: nothing new; 8 already recorded" in capsys.readouterr().out
    assert cli.main(["embed", "--csv", "x.csv", "--out", str(out)]) == 2
    assert "--csv needs --images ROOT" in capsys.readouterr().err


def test_embed_downloads_missing_weights_only_when_asked(
    tmp_path, hub, monkeypatch, tiny_encoder, capsys
):
    """The whole path of a pretrained tag: offline refusal, --download, loading, the identity.
    The tiny model is registered as an open_clip architecture with a tag served by ``hub``."""
    import open_clip
    import open_clip.factory

    config = json.loads(Path(tiny_encoder.model).read_text())
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, "tiny-vit", config)
    tags = {"tiny": {"hf_hub": "test/tiny-vit/", "mean": (0.5,) * 3, "std": (0.5,) * 3}}
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, "tiny-vit", tags)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    hub.files["test/tiny-vit/open_clip_model.safetensors"] = tiny_encoder.weights.read_bytes()
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (40, 30), (200, 120, 40)).save(photos / "a.jpg")
    journal = WriteConfig(backup=BackupMode.NONE, journal_dir=tmp_path / "journal")
    assert write_gps([photos / "a.jpg"], 43.46, 11.88, config=journal)[0].ok
    cache, out = tmp_path / "cache", tmp_path / "ds"
    tag = ["--model", "tiny-vit", "--pretrained", "tiny", "--cache-dir", str(cache)]
    args = embed_args(photos, out, *tag, "--workers", "0")
    assert cli.main(args) == 1 and hub.requests == []  # offline: a message, no network
    err = capsys.readouterr().err
    assert "no weights for encoder tiny-vit (pretrained 'tiny')" in err
    assert f"locdiff download-encoder --model tiny-vit --pretrained tiny --cache-dir {cache}" in err
    assert cli.main([*args, "--download"]) == 0
    assert "downloading weights 100.0%" in capsys.readouterr().err
    assert (cache / "test" / "tiny-vit" / "open_clip_model.safetensors").is_file()
    data = load_embeddings(out)
    assert data.encoder == {"name": "tiny-vit", "pretrained": "tiny", "dim": 32}
    assert abs(float(np.linalg.norm(data.embedding[0])) - 1.0) < 1e-6
    assert cli.main(["download-encoder", *tag]) == 0  # already here: nothing fetched again
    assert len(hub.requests) == 2  # the redirect and the file, once


def test_csv_ids_that_leave_the_images_folder_are_refused_per_row(tmp_path, encoder):
    images, outside = tmp_path / "images", tmp_path / "outside"
    (images / "sub").mkdir(parents=True)
    outside.mkdir()
    picture(0).save(images / "sub" / "ok.jpg")
    picture(1).save(outside / "x.jpg")
    (images / "far.jpg").symlink_to(outside / "x.jpg")
    (images / "elsewhere").symlink_to(outside, target_is_directory=True)
    (images / "near.jpg").symlink_to(images / "sub" / "ok.jpg")
    escapes = {  # id -> what its reason says
        "../outside/x.jpg": "climbs out of the folder with '..'",
        str(outside / "x.jpg"): "is an absolute path",
        "/etc/passwd": "is an absolute path",
        "far.jpg": f"resolves through a symbolic link to {outside / 'x.jpg'}, outside {images}",
        "elsewhere/x.jpg": f"symbolic link to {outside / 'x.jpg'}, outside {images}",
    }
    table = tmp_path / "rows.csv"
    ids = ["sub/ok.jpg", "near.jpg", *escapes]
    table.write_text("IMG_ID,LAT,LON\n" + "".join(f"{i},10.0,20.0\n" for i in ids))
    out = tmp_path / "ds"
    summary = build_dataset(EmbedConfig(out=out, csv=table, images=images), encoder)
    assert dict(summary.new) == {Outcome.EMBEDDED: 2, Outcome.BAD_ROW: 5}
    entries = latest(read_manifest(out))
    for line, (image_id, why) in enumerate(escapes.items(), 4):
        reason = entries[image_id].reason
        assert reason.startswith(f"{table} line {line}: image id {image_id!r} "), reason
        assert why in reason and "--allow-outside-root" in reason
    assert sorted(load_embeddings(out).ids) == ["near.jpg", "sub/ok.jpg"]
    # trusted on purpose: the same rows are read where they lead
    config = EmbedConfig(out=tmp_path / "ds2", csv=table, images=images, allow_outside_root=True)
    build_dataset(config, encoder)
    got = outcomes(config.out)
    assert got["/etc/passwd"] == "unreadable"  # read, and found not to be a photo
    assert {got[i] for i in escapes if i != "/etc/passwd"} == {"embedded"}


def test_photos_linked_into_the_folder_from_outside_are_recorded_not_read(
    tmp_path, photos, encoder
):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "far.jpg").write_bytes((photos / "arezzo.jpg").read_bytes())
    (photos / "far.jpg").symlink_to(outside / "far.jpg")
    (photos / "near.jpg").symlink_to(photos / "sydney.jpg")
    out = tmp_path / "ds"
    build_dataset(EmbedConfig(out=out, photos=photos), encoder)
    entries = latest(read_manifest(out))
    assert entries["near.jpg"].outcome is Outcome.EMBEDDED
    assert entries["far.jpg"].outcome is Outcome.UNREADABLE
    assert f"symbolic link to {outside / 'far.jpg'}, outside {photos}" in entries["far.jpg"].reason
    assert "--allow-outside-root" in entries["far.jpg"].reason
    assert "far.jpg" not in set(load_embeddings(out).ids)
    retry = EmbedConfig(out=out, photos=photos, retry_failed=True, allow_outside_root=True)
    build_dataset(retry, encoder)
    assert outcomes(out)["far.jpg"] == "embedded"


def test_embed_help_names_the_safety_options(capsys):
    with pytest.raises(SystemExit):
        cli.main(["embed", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--allow-outside-root" in text and "outside --images" in text
    assert "--overwrite" in text and "delete the shards and manifest already in --out" in text
