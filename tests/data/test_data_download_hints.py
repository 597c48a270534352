"""A download that fails says where the data folder is set (dataset.root, ADV_SMOOTH_DATA) and leaves nothing
behind: no partial file, no empty `data/<name>/` that would look like a started download."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from adv_smooth.data import archive
from adv_smooth.utils.errors import UserError

UNREACHABLE = "http://127.0.0.1:9/test_32x32.mat"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No network, as a user without one sees it: urllib fails with a URLError (conftest's guard would assert)."""

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_failed_download_names_the_root_and_removes_the_folders_it_made(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "svhn"
    with pytest.raises(UserError) as info:
        archive.download(UNREACHABLE, folder, "test_32x32.mat")
    message = str(info.value)
    assert "point `root`" in message and "ADV_SMOOTH_DATA" in message and "\n" not in message
    assert not (tmp_path / "data").exists()


def test_failed_download_keeps_a_folder_that_was_there(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "other.bin").write_bytes(b"x")
    with pytest.raises(UserError):
        archive.download(UNREACHABLE, tmp_path / "data" / "svhn", "test_32x32.mat")
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["other.bin"]


def test_missing_file_without_download_names_the_root(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"set download=true or place .*`root` .*ADV_SMOOTH_DATA"):
        archive.fetch_if_missing(tmp_path / "x.mat", UNREACHABLE, None, False, "SVHN test split")
