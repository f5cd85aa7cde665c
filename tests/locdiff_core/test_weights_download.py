"""Downloads against a Hugging Face-like HTTP server on 127.0.0.1 (the ``hub`` fixture)."""

import pytest

from locdiff_core.download import DownloadError, download_file, hf_file_url
from locdiff_core.image_encoder import EncoderConfig, download_weights, find_weights

REPO = "timm/vit_base_patch32_clip_224.openai"
PAYLOAD = bytes(range(256)) * 10_000  # 2.5 MB, three read chunks


def leftovers(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_weights_download_from_the_endpoint_in_hf_endpoint(tmp_path, hub, monkeypatch):
    hub.files[f"{REPO}/open_clip_model.safetensors"] = PAYLOAD
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    config = EncoderConfig("ViT-B-32", "openai", cache_dir=tmp_path)
    seen = []
    path = download_weights(config, lambda done, total: seen.append((done, total)))
    assert path == tmp_path / REPO / "open_clip_model.safetensors"
    assert path.read_bytes() == PAYLOAD
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD)) and len(seen) >= 2
    assert find_weights(config) == path  # found offline from now on
    record = "open_clip_model.safetensors.verified.json"  # its size and sha256, checked
    assert leftovers(tmp_path) == ["open_clip_model.safetensors", record]


def test_the_pickle_file_is_fetched_when_the_repo_has_no_safetensors(tmp_path, hub):
    hub.files[f"{REPO}/open_clip_pytorch_model.bin"] = PAYLOAD
    config = EncoderConfig("ViT-B-32", "openai", cache_dir=tmp_path)
    path = download_weights(config, endpoint=hub.url)
    assert path.name == "open_clip_pytorch_model.bin" and path.read_bytes() == PAYLOAD
    assert hub.requests[0].path.endswith("/open_clip_model.safetensors")  # safetensors asked first


def test_a_repo_without_weights_is_a_clear_error(tmp_path, hub):
    with pytest.raises(DownloadError, match=r"holds none of open_clip_model.safetensors"):
        download_weights(EncoderConfig("ViT-B-32", "openai", cache_dir=tmp_path), endpoint=hub.url)
    assert leftovers(tmp_path) == []


def test_a_damaged_download_leaves_nothing_under_the_final_name(tmp_path, hub):
    hub.files[f"{REPO}/w.bin"] = PAYLOAD
    hub.ranges = False  # nothing can resume, so no part is kept
    dest = tmp_path / "w.bin"
    hub.announced_sha256 = "0" * 64
    with pytest.raises(DownloadError, match=r"sha256 .* the download is damaged"):
        download_file(hf_file_url(REPO, "w.bin", hub.url), dest)
    assert leftovers(tmp_path) == []
    hub.announced_sha256, hub.cut_after = None, len(PAYLOAD) - 1000  # 1000 bytes short, once
    with pytest.raises(DownloadError, match=r"broke off|received"):
        download_file(hf_file_url(REPO, "w.bin", hub.url), dest)
    assert leftovers(tmp_path) == []
    with pytest.raises(DownloadError, match=r"sha256"):  # a checksum the caller knows wins
        download_file(hf_file_url(REPO, "w.bin", hub.url), dest, sha256="1" * 64)
    assert leftovers(tmp_path) == []


def test_an_aborted_download_keeps_the_old_file(tmp_path, hub):
    hub.files[f"{REPO}/w.bin"] = PAYLOAD
    hub.ranges = False  # nothing can resume, so no part is kept
    dest = tmp_path / "w.bin"
    dest.write_bytes(b"old")

    def interrupt(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download_file(hf_file_url(REPO, "w.bin", hub.url), dest, progress=interrupt)
    assert leftovers(tmp_path) == ["w.bin"] and dest.read_bytes() == b"old"


def test_unreachable_server_says_so(tmp_path):
    with pytest.raises(DownloadError, match=r"cannot connect.*HF_ENDPOINT"):
        download_file("http://127.0.0.1:9/x.bin", tmp_path / "x.bin", timeout=5)
    assert leftovers(tmp_path) == []
