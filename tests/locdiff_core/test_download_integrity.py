"""A download is kept only once its sha256 is known and checked, a file already on disk is used
only once its sha256 is checked, and what a killed download left is swept. Against the Hugging
Face-like server on 127.0.0.1 (``hub``, tests/conftest.py), which can leave out its checksum
headers and its Content-Length, cut a body short or serve another file."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from pathlib import Path

import pytest
import torch

from locdiff_core.download import ChecksumUnknownError, DownloadError, download_file
from locdiff_core.encoder_weights import DamagedWeightsError, KnownFile
from locdiff_core.image_encoder import EncoderConfig, ImageEncoder, download_weights, find_weights
from locdiff_core.verified_file import DamagedFileError, check_file, record_path
from trainer import cli

PAYLOAD = random.Random(2).randbytes(2 * (1 << 20) + 777)  # three read chunks
SHA = hashlib.sha256(PAYLOAD).hexdigest()
NAME = "test/weights/w.bin"
B32 = "timm/vit_base_patch32_clip_224.openai"  # open_clip's repository of ViT-B-32 / openai
B32_FILE = f"{B32}/open_clip_model.safetensors"
SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "exif-samples" / "jpg"


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def plain(hub):
    """The server as a plain mirror: :data:`PAYLOAD` at :data:`NAME`, no X-Linked-Size or
    X-Linked-Etag, and no Content-Length: nothing says how long the file is or what it holds."""
    hub.files[NAME] = PAYLOAD
    hub.linked, hub.content_length = False, False
    return hub


# --- download_file: no checksum, no file ----------------------------------------------------


def test_a_half_file_without_length_or_checksum_is_refused_not_stored(tmp_path, plain):
    plain.cut_after = len(PAYLOAD) // 2  # a broken connection that would look like the end
    dest = tmp_path / "w.bin"
    with pytest.raises(ChecksumUnknownError, match="no sha256 and no size") as caught:
        download_file(plain.file_url(NAME), dest)
    message = str(caught.value)
    assert plain.file_url(NAME) in message and f"nothing was saved to {dest}" in message
    assert "Give the file's sha256" in message
    assert files_in(tmp_path) == []  # no file, no part, no note


def test_an_error_page_served_as_bytes_is_refused(tmp_path, plain):
    plain.files[NAME] = b"<!doctype html><title>502 Bad Gateway</title>"  # no Content-Type
    with pytest.raises(ChecksumUnknownError):
        download_file(plain.file_url(NAME), tmp_path / "w.bin")
    with pytest.raises(DownloadError, match=r"sha256 .* expected .* damaged and was removed"):
        download_file(plain.file_url(NAME), tmp_path / "w.bin", sha256=SHA)
    assert files_in(tmp_path) == []


def test_a_given_sha256_verifies_a_file_nobody_announced(tmp_path, plain):
    dest = tmp_path / "w.bin"
    plain.cut_after = len(PAYLOAD) // 2
    with pytest.raises(DownloadError, match=r"damaged and was removed") as caught:
        download_file(plain.file_url(NAME), dest, sha256=SHA.upper())
    assert f"nothing was saved to {dest}" in str(caught.value)
    assert files_in(tmp_path) == []  # a wrong whole is never kept to resume from
    assert download_file(plain.file_url(NAME), dest, sha256=SHA).read_bytes() == PAYLOAD
    assert files_in(tmp_path) == ["w.bin"]


def test_without_require_sha256_a_size_is_still_needed(tmp_path, plain):
    dest = tmp_path / "w.bin"
    plain.content_length, plain.ranges, plain.cut_after = True, False, 1000
    with pytest.raises(DownloadError, match=r"received 1,000 of "):
        download_file(plain.file_url(NAME), dest, require_sha256=False)
    assert files_in(tmp_path) == []
    assert download_file(plain.file_url(NAME), dest, require_sha256=False).read_bytes() == PAYLOAD
    plain.content_length = False
    with pytest.raises(ChecksumUnknownError, match="no sha256 and no size"):
        download_file(plain.file_url(NAME), tmp_path / "other.bin", require_sha256=False)
    assert files_in(tmp_path) == ["w.bin"]


def test_a_size_other_than_the_known_one_is_refused(tmp_path, hub):
    hub.files[NAME] = PAYLOAD
    dest = tmp_path / "w.bin"
    with pytest.raises(DownloadError, match=r"announces 2,097,929 bytes, but .* 2,097,930"):
        download_file(hub.file_url(NAME), dest, size=len(PAYLOAD) + 1)
    assert files_in(tmp_path) == []
    assert download_file(hub.file_url(NAME), dest, sha256=SHA, size=len(PAYLOAD)).exists()


# --- leftovers of a killed download ---------------------------------------------------------


def test_leftovers_of_a_killed_download_are_swept(tmp_path, hub):
    hub.files[NAME] = PAYLOAD
    dest = tmp_path / "w.bin"
    stale = [".w.bin.part.json.k1lled.tmp", ".w.bin.verified.json.x.tmp", "w.bin.tmp"]
    for name in stale:
        (tmp_path / name).write_bytes(b"half")
    (tmp_path / "w.bin.part").write_bytes(PAYLOAD[:5000])  # its note never got written
    (tmp_path / "other.bin.tmp").write_bytes(b"not ours")
    download_file(hub.file_url(NAME), dest)
    assert hub.blob_requests() == [(None, 200)]  # the part without a note was not resumed
    assert files_in(tmp_path) == ["other.bin.tmp", "w.bin"]
    assert dest.read_bytes() == PAYLOAD


def test_a_part_noted_for_another_size_is_removed_a_matching_one_resumed(tmp_path, hub):
    hub.files[NAME] = PAYLOAD
    dest, url = tmp_path / "w.bin", hub.file_url(NAME)
    note = {"url": url, "total": len(PAYLOAD) + 9, "sha256": None, "etag": None}
    (tmp_path / "w.bin.part").write_bytes(PAYLOAD[:5000])
    (tmp_path / "w.bin.part.json").write_text(json.dumps(note))
    download_file(url, dest, size=len(PAYLOAD))
    assert hub.blob_requests() == [(None, 200)]
    dest.unlink()
    (tmp_path / "w.bin.part").write_bytes(PAYLOAD[:5000])
    note = {**note, "total": len(PAYLOAD), "sha256": SHA}
    (tmp_path / "w.bin.part.json").write_text(json.dumps(note))
    (tmp_path / ".w.bin.part.json.k1lled.tmp").write_bytes(b"{")
    download_file(url, dest, size=len(PAYLOAD))
    assert hub.blob_requests()[-1] == ("bytes=5000-", 206)
    assert files_in(tmp_path) == ["w.bin"] and dest.read_bytes() == PAYLOAD


# --- the record of a verified file ----------------------------------------------------------


def test_a_verified_file_is_hashed_once_and_a_change_is_noticed(tmp_path, monkeypatch):
    path = tmp_path / "w.bin"
    path.write_bytes(PAYLOAD)
    assert check_file(path) is None  # nothing to check it against
    assert check_file(path, SHA) == SHA and record_path(path).is_file()
    hashed = []
    real = hashlib.file_digest
    monkeypatch.setattr(hashlib, "file_digest", lambda *a: hashed.append(1) or real(*a))
    assert check_file(path, SHA) == SHA and check_file(path) == SHA  # the record answers
    assert hashed == []
    stat = path.stat()
    path.write_bytes(bytes(b ^ 1 for b in PAYLOAD))  # same size, other bytes
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    with pytest.raises(DamagedFileError, match=f"the file is damaged: .* expected {SHA}"):
        check_file(path)  # the record's sha256 is the reference
    assert hashed == [1]


# --- encoder weights: the table, --sha256, "already here" -----------------------------------


def test_a_pinned_checksum_wins_over_what_the_server_announces(tmp_path, hub, monkeypatch):
    from locdiff_core import encoder_weights

    hub.files[B32_FILE] = PAYLOAD
    other = hashlib.sha256(b"the real weights").hexdigest()
    key = (B32, "open_clip_model.safetensors")
    monkeypatch.setitem(encoder_weights.KNOWN_FILES, key, KnownFile(len(PAYLOAD), other))
    config = EncoderConfig("ViT-B-32", "openai", cache_dir=tmp_path)
    with pytest.raises(DownloadError, match=f"sha256 is {SHA}, expected {other}"):
        download_weights(config, endpoint=hub.url)
    monkeypatch.setitem(encoder_weights.KNOWN_FILES, key, KnownFile(len(PAYLOAD), SHA))
    hub.linked = hub.content_length = False  # the table alone vouches for it
    assert download_weights(config, endpoint=hub.url).read_bytes() == PAYLOAD


def test_weights_nobody_vouches_for_are_refused_with_the_sha256_command(tmp_path, hub):
    hub.files[B32_FILE] = PAYLOAD
    hub.linked = False
    config = EncoderConfig("ViT-B-32", "openai", cache_dir=tmp_path)
    with pytest.raises(ChecksumUnknownError) as caught:
        download_weights(config, endpoint=hub.url)
    assert "server sent no sha256" in str(caught.value)
    command = (
        f"locdiff download-encoder --model ViT-B-32 --pretrained openai --cache-dir {tmp_path}"
    )
    assert f"{command} --sha256 HEX" in str(caught.value)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # nothing stored
    path = download_weights(config, endpoint=hub.url, sha256=SHA)
    assert path.read_bytes() == PAYLOAD and record_path(path).is_file()


def test_a_damaged_file_from_an_old_download_is_caught_by_the_known_checksum(tmp_path):
    """The real table: ViT-L/14's weights are known, so half a file under their name is never
    taken for them (no server involved)."""
    folder = tmp_path / "timm" / "vit_large_patch14_clip_224.openai"
    folder.mkdir(parents=True)
    (folder / "open_clip_model.safetensors").write_bytes(PAYLOAD)
    with pytest.raises(DamagedWeightsError, match="the file is damaged") as caught:
        find_weights(EncoderConfig("ViT-L-14", "openai", cache_dir=tmp_path))
    assert str(folder / "open_clip_model.safetensors") in str(caught.value)
    assert "locdiff download-encoder --model ViT-L-14 --pretrained openai" in str(caught.value)
    assert str(caught.value).endswith(" --force")


def test_download_encoder_checks_what_is_already_here(tmp_path, hub, monkeypatch, capsys):
    hub.files[B32_FILE] = PAYLOAD
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    cache = tmp_path / "cache"
    argv = ["download-encoder", "--model", "ViT-B-32", "--pretrained", "openai"]
    argv += ["--cache-dir", str(cache)]
    path = cache / B32_FILE
    assert cli.main(argv) == 0 and capsys.readouterr().out == f"downloaded: {path}\n"
    assert cli.main(argv) == 0 and "(sha256 checked)" in capsys.readouterr().out
    asked = len(hub.requests)
    with open(path, "r+b") as fh:  # cut short on disk, e.g. a full disk while copying it back
        fh.truncate(len(PAYLOAD) // 2)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"{path}: the file is damaged" in err and err.rstrip().endswith("--force")
    assert len(hub.requests) == asked  # nothing fetched behind the user's back
    assert cli.main([*argv, "--force"]) == 0 and path.read_bytes() == PAYLOAD
    capsys.readouterr()
    assert cli.main(argv) == 0 and "(sha256 checked)" in capsys.readouterr().out
    assert cli.main([*argv, "--sha256", "1" * 64]) == 2  # the user's checksum is checked too
    assert "damaged" in capsys.readouterr().err


def test_a_file_here_with_no_known_checksum_says_it_was_not_checked(tmp_path, capsys):
    folder = tmp_path / B32
    folder.mkdir(parents=True)
    (folder / "open_clip_pytorch_model.bin").write_bytes(PAYLOAD)  # not in the table
    argv = ["download-encoder", "--model", "ViT-B-32", "--pretrained", "openai"]
    assert cli.main([*argv, "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "not checked" in out and "--sha256 HEX" in out and "--force" in out
    assert cli.main([*argv, "--cache-dir", str(tmp_path), "--sha256", SHA]) == 0
    assert "(sha256 checked)" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="2"):  # argparse: not 64 hexadecimal digits
        cli.main([*argv, "--sha256", "xyz"])
    assert "is not a sha256" in capsys.readouterr().err


# --- embed and predict ----------------------------------------------------------------------


@pytest.fixture
def tiny_tag(hub, monkeypatch, tiny_encoder):
    """The tiny ViT registered in open_clip as ``tiny-vit`` / ``tiny``, its weights served by
    ``hub`` as a plain mirror (no checksum headers) behind ``HF_ENDPOINT``; their sha256."""
    import open_clip
    import open_clip.factory

    config = json.loads(Path(tiny_encoder.model).read_text())
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, "tiny-vit", config)
    tags = {"tiny": {"hf_hub": "test/tiny-vit/", "mean": (0.5,) * 3, "std": (0.5,) * 3}}
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, "tiny-vit", tags)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    data = tiny_encoder.weights.read_bytes()
    hub.files["test/tiny-vit/open_clip_model.safetensors"] = data
    hub.linked = False
    return hashlib.sha256(data).hexdigest()


def test_weights_that_do_not_load_say_how_to_download_them_again(tmp_path, tiny_tag):
    config = EncoderConfig("tiny-vit", "tiny", device="cpu", cache_dir=tmp_path)
    path = download_weights(config, sha256=tiny_tag)
    record_path(path).unlink()  # as left by a download without a record: nothing to check
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size // 2)
    with pytest.raises(ValueError, match="cannot read weights") as caught:
        ImageEncoder.load(config)
    assert "may be damaged" in str(caught.value)
    assert str(caught.value).endswith(
        f"locdiff download-encoder --model tiny-vit --pretrained tiny --cache-dir {tmp_path} "
        "--force"
    )


def test_predict_download_takes_the_sha256_a_mirror_does_not_give(tmp_path, hub, tiny_tag, capsys):
    from locdiff_core.checkpoint import CheckpointConfig, save_checkpoint
    from locdiff_core.diffusion import DiffusionConfig
    from locdiff_core.nn import CSUNet, CSUNetConfig

    torch.manual_seed(0)
    cfg = CSUNetConfig(degree=4, dim_cond=32, widths=(16,), dim_bottleneck=8, dropout=0.0)
    identity = {"name": "tiny-vit", "pretrained": "tiny", "dim": 32}
    run = tmp_path / "run"
    save_checkpoint(
        run, CSUNet(cfg), CheckpointConfig(cfg, DiffusionConfig(num_steps=20), encoder=identity)
    )
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(sorted((SAMPLES / "gps").glob("DSCN*.jpg"))[0], photos)
    cache, out = tmp_path / "cache", tmp_path / "pred.csv"
    argv = ["predict", "--engine", "locdiff", "--checkpoint", str(run), "--images", str(photos)]
    argv += ["--out", str(out), "--download", "--cache-dir", str(cache), "--device", "cpu"]
    argv += ["--steps", "2", "--samples", "2", "--workers", "0"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "server sent no sha256" in err and "--sha256 HEX" in err and not out.exists()
    assert cli.main([*argv, "--sha256", tiny_tag]) == 0
    assert out.is_file() and (cache / "test" / "tiny-vit" / "open_clip_model.safetensors").is_file()
