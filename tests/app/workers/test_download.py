"""Downloading a checkpoint from a URL: progress, atomic result, clear failures."""

import pytest

from app.workers.download import DownloadCancelledError, download, model_destination


def test_download_with_progress(server, tmp_path):
    www, url = server
    payload = bytes(range(256)) * 12_000  # 3 MB: several blocks of 1 MiB
    (www / "model.safetensors").write_bytes(payload)
    seen = []
    dest = tmp_path / "models" / "model.safetensors"
    assert download(f"{url}/model.safetensors", dest, lambda d, t: seen.append((d, t))) == dest
    assert dest.read_bytes() == payload
    assert seen[-1] == (len(payload), len(payload)) and len(seen) > 1


def test_missing_file_is_a_clear_error_and_leaves_nothing(server, tmp_path):
    _, url = server
    dest = tmp_path / "models" / "x.safetensors"
    with pytest.raises(ValueError, match="404"):
        download(f"{url}/nothing.safetensors", dest)
    assert list(dest.parent.iterdir()) == []


def test_a_destination_that_cannot_be_written_is_named(server, tmp_path):
    www, url = server
    (www / "m.safetensors").write_bytes(b"x" * 1000)
    blocker = tmp_path / "models"
    blocker.write_text("a file where the models folder should be")
    dest = blocker / "m.safetensors"
    with pytest.raises(ValueError, match=f"could not save the model to {dest}"):
        download(f"{url}/m.safetensors", dest)
    assert blocker.read_text().startswith("a file")


def test_cancel_keeps_the_old_file(server, tmp_path):
    www, url = server
    (www / "m.safetensors").write_bytes(b"new" * 100_000)
    dest = tmp_path / "m.safetensors"
    dest.write_bytes(b"old")
    with pytest.raises(DownloadCancelledError):
        download(f"{url}/m.safetensors", dest, cancelled=lambda: True)
    assert dest.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors", "www"]


def test_unreachable_server_and_empty_url(tmp_path):
    with pytest.raises(ValueError, match="check the network"):
        download("http://127.0.0.1:9/m.safetensors", tmp_path / "m.safetensors", timeout_s=2)
    with pytest.raises(ValueError, match="no model download URL"):
        download("", tmp_path / "m.safetensors")


def test_destination_is_in_the_data_folder(tmp_path):
    dest = model_destination("https://example.org/runs/l47/checkpoint.safetensors?x=1")
    assert dest == tmp_path / "data" / "models" / "checkpoint.safetensors"
    assert model_destination("https://example.org/").name == "checkpoint.safetensors"
