"""A dataset folder is never lost to its manifest: names holding any Unicode line separator keep
their line, a lost manifest is rebuilt from the shards (or the folder is refused, untouched), and
shards are deleted only by an interrupted commit's repair or by an explicit ``--overwrite``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from locdiff_core.image_encoder import ImageEncoder
from trainer import cli
from trainer.data import load_embeddings, save_embeddings
from trainer.embed import EmbedConfig, build_dataset
from trainer.manifest import MANIFEST, Entry, Outcome, ShardedWriter, latest, read_manifest

IDENTITY = {"name": "test-encoder", "pretrained": "test", "dim": 4}
# Every character str.splitlines() ends a line at, besides "\n" and "\r"
SEPARATORS = "\v\f\x1c\x1d\x1e\x85\u2028\u2029"
ODD_KEYS = [f"a{c}b.jpg" for c in SEPARATORS] + ["\r\nx.jpg", "写真/東京.jpg", "e😀.jpg"]


def fill(folder: Path, keys: list[str], failures: list[str] = (), shard_size: int = 2):
    """A dataset at ``folder``: one embedded row per key (shards of ``shard_size``) and one
    UNREADABLE line per failure, committed the way ``locdiff embed`` commits them."""
    writer = ShardedWriter(folder, IDENTITY, shard_size)
    rng = np.random.default_rng(0)
    for key in failures:
        writer.add_failure(Entry(key, Outcome.UNREADABLE, f"cannot read {key}"))
    for n, key in enumerate(keys):
        row = rng.standard_normal(4).astype(np.float32)
        writer.add_row(key, row / np.linalg.norm(row), float(n % 90), float(n % 180), 2.0)
    writer.commit()
    return writer


def snapshot(folder: Path) -> dict[str, str]:
    """Every file of ``folder`` with the sha256 of its bytes."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def test_keys_with_unicode_line_separators_keep_their_lines(tmp_path):
    out = tmp_path / "ds"
    fill(out, ODD_KEYS[:6], failures=ODD_KEYS[6:])
    data = (out / MANIFEST).read_bytes()
    assert data.isascii() and data.count(b"\n") == len(ODD_KEYS)
    reopened = ShardedWriter(out, IDENTITY, 2)  # what every later `embed` does first
    assert set(reopened.entries) == set(ODD_KEYS) and reopened.notes == []
    assert reopened.entries[ODD_KEYS[7]].reason == f"cannot read {ODD_KEYS[7]}"
    assert (out / MANIFEST).read_bytes() == data  # nothing to repair, nothing rewritten
    assert sorted(load_embeddings(out).ids) == sorted(ODD_KEYS[:6])


def test_a_manifest_holding_raw_separators_still_reads(tmp_path):
    out = tmp_path / "ds"
    fill(out, ODD_KEYS)
    lines = (out / MANIFEST).read_text(encoding="ascii").split("\n")[:-1]
    raw = "".join(json.dumps(json.loads(t), ensure_ascii=False) + "\n" for t in lines)
    assert "\u2028" in raw and "\x85" in raw
    (out / MANIFEST).write_text(raw, encoding="utf-8")  # as older versions wrote it
    assert {e.key for e in read_manifest(out)} == set(ODD_KEYS)
    assert set(ShardedWriter(out, IDENTITY, 2).entries) == set(ODD_KEYS)


def test_a_bad_manifest_line_names_the_line_and_the_way_out(tmp_path):
    out = tmp_path / "ds"
    fill(out, ["a.jpg", "b.jpg", "c.jpg"])
    good = (out / MANIFEST).read_bytes()
    (out / MANIFEST).write_bytes(good + b'{"key": "\xff"}\n')
    with pytest.raises(ValueError, match=rf"{MANIFEST} line 4: not UTF-8 .*delete {MANIFEST}"):
        ShardedWriter(out, IDENTITY, 2)
    (out / MANIFEST).write_bytes(good + b"{oops\n")
    with pytest.raises(ValueError, match=r"line 4: not a manifest line .*rebuilt from the shards"):
        ShardedWriter(out, IDENTITY, 2)


def test_a_lost_manifest_is_rebuilt_from_the_shards(tmp_path):
    out = tmp_path / "ds"
    fill(out, ["a.jpg", "b.jpg", "c.jpg"], failures=["broken.jpg"])
    shards = {k: v for k, v in snapshot(out).items() if k.endswith(".npz")}
    (out / MANIFEST).unlink()
    writer = ShardedWriter(out, IDENTITY, 2)
    assert {k: v for k, v in snapshot(out).items() if k.endswith(".npz")} == shards
    assert {k: (e.outcome, e.shard) for k, e in writer.entries.items()} == {
        "a.jpg": (Outcome.EMBEDDED, "shard-00000.npz"),
        "b.jpg": (Outcome.EMBEDDED, "shard-00000.npz"),
        "c.jpg": (Outcome.EMBEDDED, "shard-00001.npz"),
    }
    assert writer.notes == [
        f"{out}: {MANIFEST} was missing; rebuilt it from 2 shard(s) holding 3 embedded images "
        "(files that had failed are looked at again)"
    ]
    assert writer.done() == {"a.jpg", "b.jpg", "c.jpg"}  # broken.jpg is looked at again
    assert latest(read_manifest(out)) == writer.entries  # written down, not only in memory
    assert writer.next_index == 2


@pytest.mark.parametrize("damage", ["unreadable", "duplicate"])
def test_a_lost_manifest_that_cannot_be_rebuilt_leaves_the_folder_untouched(tmp_path, damage):
    out = tmp_path / "ds"
    fill(out, ["a.jpg", "b.jpg", "c.jpg"])
    (out / MANIFEST).unlink()
    if damage == "unreadable":
        (out / "shard-00001.npz").write_bytes(b"not a zip archive")
        why = r"shard-00001\.npz cannot be read"
    else:
        emb = np.eye(4, dtype=np.float32)[:1]
        save_embeddings(out / "shard-00002.npz", emb, [1.0], [2.0], ["a.jpg"], IDENTITY)
        why = r"id 'a\.jpg' is in both shard-00000\.npz and shard-00002\.npz"
    before = snapshot(out)
    with pytest.raises(ValueError, match=rf"{MANIFEST} is missing and .*{why}") as info:
        ShardedWriter(out, IDENTITY, 2)
    assert str(out) in str(info.value) and "move" in str(info.value)
    assert "--overwrite" in str(info.value) and "new --out" in str(info.value)
    assert snapshot(out) == before


def test_shards_the_manifest_does_not_name_are_refused_not_deleted(tmp_path):
    out = tmp_path / "ds"
    fill(out, ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"])  # shards 0, 1, 2
    lines = (out / MANIFEST).read_text().splitlines(keepends=True)
    (out / MANIFEST).write_text("".join(lines[:2]))  # an older copy: names shard 0 only
    before = snapshot(out)
    with pytest.raises(ValueError, match=r"names none of the shards shard-00001\.npz, shard-0"):
        ShardedWriter(out, IDENTITY, 2)
    assert snapshot(out) == before
    (out / MANIFEST).write_text("".join(lines[:4]))  # shard 2 alone: an interrupted commit
    writer = ShardedWriter(out, IDENTITY, 2)
    assert not (out / "shard-00002.npz").exists() and set(writer.entries) == {
        "a.jpg",
        "b.jpg",
        "c.jpg",
        "d.jpg",
    }
    assert "shard-00002.npz: removed; an interrupted run wrote it" in writer.notes[0]


def test_an_unreadable_last_shard_is_refused_not_deleted(tmp_path):
    out = tmp_path / "ds"
    fill(out, ["a.jpg", "b.jpg", "c.jpg"])
    (out / "shard-00001.npz").write_bytes(b"damaged")
    before = snapshot(out)
    with pytest.raises(ValueError, match=r"shard-00001\.npz: cannot be read.*--overwrite"):
        ShardedWriter(out, IDENTITY, 2)
    assert snapshot(out) == before


def test_another_encoder_is_told_about_overwrite(tmp_path):
    out = tmp_path / "ds"
    fill(out, ["a.jpg"])
    with pytest.raises(ValueError, match=r"pass --overwrite to build the dataset again"):
        ShardedWriter(out, {**IDENTITY, "pretrained": "other"}, 2)


@pytest.fixture
def csv_images(tmp_path):
    """A location CSV whose ids hold U+2028 and U+0085, their images, and one missing image."""
    images = tmp_path / "images"
    images.mkdir()
    ids = ["line\u2028sep.jpg", "next\x85line.jpg", "plain.jpg"]
    for n, name in enumerate(ids):
        Image.new("RGB", (40, 30), (40 * n, 100, 200)).save(images / name)
    table = tmp_path / "rows.csv"
    rows = "".join(f"{i},{n}.5,{n}.25\n" for n, i in enumerate([*ids, "gone.jpg"]))
    table.write_text("IMG_ID,LAT,LON\n" + rows, encoding="utf-8")
    return table, images


def test_embed_reruns_on_ids_with_line_separators(tmp_path, tiny_encoder, csv_images):
    table, images = csv_images
    encoder = ImageEncoder.load(tiny_encoder)
    config = EmbedConfig(out=tmp_path / "ds", csv=table, images=images, shard_size=2)
    first = build_dataset(config, encoder)
    assert dict(first.new) == {Outcome.EMBEDDED: 3, Outcome.MISSING: 1}
    again = build_dataset(config, encoder)
    assert dict(again.new) == {} and again.skipped == 4 and again.notes == []
    assert "line\u2028sep.jpg" in set(load_embeddings(config.out).ids)


def test_embed_after_a_lost_manifest_keeps_the_shards_and_overwrite_starts_again(
    tmp_path, tiny_encoder, csv_images, capsys
):
    table, images = csv_images
    out = tmp_path / "ds"
    weights = ["--model", tiny_encoder.model, "--weights", str(tiny_encoder.weights)]
    args = ["embed", "--csv", str(table), "--images", str(images), "--out", str(out)]
    args += [*weights, "--device", "cpu", "--workers", "0", "--shard-size", "2"]
    assert cli.main(args) == 0
    (out / "keep-me.txt").write_text("the user's notes")
    shards = {k: v for k, v in snapshot(out).items() if k.endswith(".npz")}
    (out / MANIFEST).unlink()
    capsys.readouterr()
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert f"note: {out}: {MANIFEST} was missing; rebuilt it from 2 shard(s)" in printed
    assert "this run: 1 missing; 3 already recorded were skipped" in printed
    assert {k: v for k, v in snapshot(out).items() if k.endswith(".npz")} == shards
    assert len(load_embeddings(out)) == 3

    table.write_text("IMG_ID,LAT,LON\nplain.jpg,1.0,2.0\n")
    assert cli.main([*args, "--overwrite"]) == 0
    printed = capsys.readouterr().out
    assert f"note: {out}: --overwrite deleted 2 shard(s) and the manifest" in printed
    assert list(load_embeddings(out).ids) == ["plain.jpg"]
    assert set(latest(read_manifest(out))) == {"plain.jpg"}
    assert (out / "keep-me.txt").read_text() == "the user's notes"
