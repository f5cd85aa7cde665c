"""GeoCLIP's files: found in the installed wheel, checked against its RECORD, read safely."""

import base64
import importlib.metadata
import shutil

import numpy as np
import pytest
import torch

from locdiff_core.geoclip import GeoCLIPFiles, GeoCLIPFilesError
from locdiff_core.geoclip.weights import _FILES


@pytest.fixture(scope="module")
def installed():
    return GeoCLIPFiles.installed()


def test_the_installed_wheel_has_every_file(installed):
    assert set(installed.sha256) == set(_FILES)
    head = installed.state_dict("image_head")
    assert head["0.weight"].shape == (768, 768) and head["2.weight"].shape == (512, 768)
    scale = installed.state_dict("logit_scale")
    assert float(scale.exp()) == pytest.approx(39.7, abs=0.1)
    gallery = installed.gallery_coordinates()
    assert gallery.shape == (100_000, 2) and gallery.dtype == np.float64


def copy_of(installed, folder):
    for field, rel in _FILES.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(getattr(installed, field), folder / rel)
    return GeoCLIPFiles.from_folder(folder)


def test_a_folder_copy_reads_the_same(installed, tmp_path):
    copy = copy_of(installed, tmp_path)
    assert copy.sha256 == installed.sha256 and copy.key == installed.key


def test_a_changed_file_is_refused_by_the_record_check(installed, tmp_path):
    from locdiff_core.geoclip import weights

    copy = copy_of(installed, tmp_path)
    data = bytearray(copy.image_head.read_bytes())
    data[-100] ^= 0xFF
    copy.image_head.write_bytes(bytes(data))

    digest = bytes.fromhex(installed.sha256["image_head"])
    entry = importlib.metadata.FileHash(f"sha256={base64.urlsafe_b64encode(digest).decode()}")
    with pytest.raises(GeoCLIPFilesError, match=r"image_encoder_mlp_weights\.pth.*reinstall"):
        weights._check_recorded(copy.image_head, entry)


def test_pickled_code_is_never_run(installed, tmp_path):
    copy = copy_of(installed, tmp_path)

    class Evil:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pickle ran')",))

    torch.save({"x": Evil()}, copy.image_head)
    with pytest.raises(GeoCLIPFilesError, match="not a readable tensor file"):
        copy.state_dict("image_head")


def test_a_missing_or_broken_file_is_named(installed, tmp_path):
    copy = copy_of(installed, tmp_path)
    copy.gallery.write_text("LAT,LON\n10,20\n95,0\n", encoding="utf-8")
    with pytest.raises(GeoCLIPFilesError, match=r"coordinates_100K.csv: row 3"):
        copy.gallery_coordinates()
    copy.gallery.write_text("X,Y\n10,20\n", encoding="utf-8")
    with pytest.raises(GeoCLIPFilesError, match="LAT,LON"):
        copy.gallery_coordinates()
    copy.logit_scale.unlink()
    with pytest.raises(GeoCLIPFilesError, match=r"logit_scale_weights\.pth: missing"):
        GeoCLIPFiles.from_folder(tmp_path)
