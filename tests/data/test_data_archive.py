"""archive.py: zip-slip refusal, atomic extraction, checksum and download errors as one-line UserErrors."""

from __future__ import annotations

import urllib.error
import zipfile
from pathlib import Path

import pytest
from torchvision.datasets import utils as tv_utils

from adv_smooth.data import archive
from adv_smooth.utils.errors import UserError


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, payload in entries.items():
            zf.writestr(zipfile.ZipInfo(name), payload)  # ZipInfo keeps the name verbatim
    return path


def _all_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_extracts_a_normal_archive(tmp_path: Path) -> None:
    src = _zip(tmp_path / "ok.zip", {"pack/a.txt": b"a", "pack/sub/b.txt": b"b"})
    dest = tmp_path / "dest"
    created = archive.safe_extract_zip(src, dest)
    assert created == [dest / "pack"]
    assert (dest / "pack" / "a.txt").read_bytes() == b"a"
    assert (dest / "pack" / "sub" / "b.txt").read_bytes() == b"b"
    assert [p.name for p in dest.iterdir()] == ["pack"]  # no staging folder left behind


def _assert_refused(tmp_path: Path, extract, src: Path, name: str, reason: str) -> Path:
    """`extract(src, dest)` refuses in one line naming the archive, the entry and why, and writes nothing anywhere,
    not even the harmless entry."""
    dest = tmp_path / "area" / "dest"
    dest.mkdir(parents=True)
    before = _all_files(tmp_path)
    with pytest.raises(UserError) as info:
        extract(src, dest)
    message = str(info.value)
    assert repr(name) in message and reason in message and str(src) in message and "\n" not in message
    assert _all_files(tmp_path) == before
    return dest


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("/tmp/evil_absolute.txt", "absolute"),
        ("../evil_parent.txt", "'..'"),
        ("pack/../../evil_nested.txt", "'..'"),
        ("C:/evil_drive.txt", "absolute"),
        ("..\\evil_backslash.txt", "'..'"),
    ],
)
def test_refuses_entries_escaping_the_target(tmp_path: Path, entry: str, reason: str) -> None:
    src = _zip(tmp_path / "evil.zip", {"pack/fine.txt": b"fine", entry: b"evil"})
    _assert_refused(tmp_path, archive.safe_extract_zip, src, entry, reason)
    assert not Path("/tmp/evil_absolute.txt").exists()


@pytest.mark.parametrize("entry", ["./.", ".", ""], ids=["dot-slash-dot", "dot", "empty"])
def test_zip_file_entry_naming_only_the_target_is_refused(tmp_path: Path, entry: str) -> None:
    """`./.` once raised IndexError: a file entry whose name normalises to the target folder itself is refused."""
    src = _zip(tmp_path / "odd.zip", {"pack/fine.txt": b"fine", entry: b"odd"})
    dest = _assert_refused(tmp_path, archive.safe_extract_zip, src, entry, "names no file")
    assert list(dest.iterdir()) == []


def test_zip_file_where_a_folder_is_needed_is_refused(tmp_path: Path) -> None:
    """`pack/.` (a file, normalised to `pack`) beside `pack/a.txt`: refused by name, not an OS error mid-way."""
    src = _zip(tmp_path / "clash.zip", {"pack/.": b"file", "pack/a.txt": b"a"})
    _assert_refused(tmp_path, archive.safe_extract_zip, src, "pack/.", "is a file where other entries put the folder")


def test_zip_names_are_normalised_once_and_written_there(tmp_path: Path) -> None:
    """`./`, `.` parts, doubled and Windows separators: each entry lands where the checks saw it."""
    entries = {"./": b"", "./pack/a.txt": b"a", "pack/./b.txt": b"b", "pack\\c.txt": b"c", "pack//d.txt": b"d"}
    dest = tmp_path / "dest"
    assert archive.safe_extract_zip(_zip(tmp_path / "odd.zip", entries), dest) == [dest / "pack"]
    assert {p.name: p.read_bytes() for p in _all_files(dest)} == {
        "a.txt": b"a",
        "b.txt": b"b",
        "c.txt": b"c",
        "d.txt": b"d",
    }
    assert [p.name for p in dest.iterdir()] == ["pack"]


def test_refuses_to_overwrite_an_existing_folder(tmp_path: Path) -> None:
    src = _zip(tmp_path / "ok.zip", {"pack/a.txt": b"new"})
    (tmp_path / "dest" / "pack").mkdir(parents=True)
    (tmp_path / "dest" / "pack" / "a.txt").write_bytes(b"old")
    with pytest.raises(UserError, match="already exists"):
        archive.safe_extract_zip(src, tmp_path / "dest")
    assert (tmp_path / "dest" / "pack" / "a.txt").read_bytes() == b"old"


def test_truncated_zip_is_a_user_error_naming_it(tmp_path: Path) -> None:
    good = _zip(tmp_path / "good.zip", {"pack/a.txt": b"x" * 1000})
    bad = tmp_path / "bad.zip"
    bad.write_bytes(good.read_bytes()[:40])
    with pytest.raises(UserError, match="bad.zip is not a valid zip"):
        archive.safe_extract_zip(bad, tmp_path / "dest")


def test_verify_md5(tmp_path: Path) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(b"hello")
    archive.verify_md5(path, "5d41402abc4b2a76b9719d911017c592")
    with pytest.raises(UserError) as info:
        archive.verify_md5(path, "0" * 32)
    assert str(path) in str(info.value) and "corrupted" in str(info.value)


def test_network_failure_is_a_one_line_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(tv_utils, "download_url", offline)
    with pytest.raises(UserError) as info:
        archive.download("http://example.invalid/x.zip", tmp_path, "x.zip", "0" * 32)
    message = str(info.value)
    assert "http://example.invalid/x.zip" in message and str(tmp_path / "x.zip") in message
    assert "\n" not in message


# -- tar archives (CIFAR's format): the same refusals as for zip, before anything is written ----------------------
def _tar(path: Path, members: list[tuple[str, str, bytes | str]]) -> Path:
    """members: (kind, name, payload): kind 'file' (payload bytes), 'symlink' / 'hardlink' (payload target)."""
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tf:
        for kind, name, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                assert isinstance(payload, bytes)
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
                continue
            info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "device": tarfile.CHRTYPE}[kind]
            info.linkname = str(payload)
            tf.addfile(info)
    return path


def test_extracts_a_normal_tar_and_refreshes_an_existing_folder(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    (dest / "cifar-10-batches-py").mkdir(parents=True)
    (dest / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"damaged")
    (dest / "cifar-10-batches-py" / "keep.txt").write_bytes(b"mine")
    src = _tar(
        tmp_path / "ok.tar.gz",
        [
            ("file", "cifar-10-batches-py/data_batch_1", b"good"),
            ("file", "cifar-10-batches-py/sub/meta", b"m"),
            ("symlink", "cifar-10-batches-py/alias", "data_batch_1"),
        ],
    )
    archive.safe_extract_tar(src, dest)
    folder = dest / "cifar-10-batches-py"
    assert (folder / "data_batch_1").read_bytes() == b"good" and (folder / "sub" / "meta").read_bytes() == b"m"
    assert (folder / "keep.txt").read_bytes() == b"mine" and (folder / "alias").read_bytes() == b"good"
    assert sorted(p.name for p in dest.iterdir()) == ["cifar-10-batches-py"]  # no staging folder left


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (("file", "../evil_parent.txt", b"evil"), "'..'"),
        (("file", "pack/../../evil_nested.txt", b"evil"), "'..'"),
        (("file", "/tmp/adv_smooth_evil_absolute.txt", b"evil"), "absolute"),
        (("symlink", "pack/escape", "../../outside"), "links outside the target folder"),
        (("symlink", "pack/abs", "/etc/passwd"), "links to the absolute path"),
        (("hardlink", "pack/hard", "../outside"), "links outside the target folder"),
        (("device", "pack/tty", ""), "device"),
    ],
    ids=["traversal", "nested traversal", "absolute", "symlink escaping", "absolute symlink", "hardlink", "device"],
)
def test_tar_members_escaping_the_target_are_refused(tmp_path: Path, member: tuple, reason: str) -> None:
    src = _tar(tmp_path / "evil.tar.gz", [("file", "pack/fine.txt", b"fine"), member])
    dest = _assert_refused(tmp_path, archive.safe_extract_tar, src, member[1], reason)
    assert list(dest.iterdir()) == []
    assert not Path("/tmp/adv_smooth_evil_absolute.txt").exists()


def test_tar_file_member_naming_only_the_target_is_refused(tmp_path: Path) -> None:
    """A regular file called `./.` would overwrite the target folder: refused, not "damaged, download again"."""
    src = _tar(tmp_path / "odd.tar.gz", [("file", "pack/fine.txt", b"fine"), ("file", "./.", b"odd")])
    dest = _assert_refused(tmp_path, archive.safe_extract_tar, src, "./.", "names no file")
    assert list(dest.iterdir()) == []


def test_cifar_download_goes_through_the_checked_extraction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`dataset=cifar10 dataset.download=true` with a hostile archive (its MD5 check bypassed): refused."""
    from adv_smooth.data.cifar import CifarDataModule

    (tmp_path / "root").mkdir()
    src = _tar(tmp_path / "root" / "cifar-10-python.tar.gz", [("file", "../escaped.txt", b"evil")])
    monkeypatch.setattr(archive, "download", lambda url, root, filename, md5=None: src)  # the local file, no network
    monkeypatch.setattr(tv_utils, "extract_archive", lambda *a, **k: pytest.fail("torchvision's unfiltered extract"))
    dm = CifarDataModule(root=str(tmp_path / "root"), download=True)
    with pytest.raises(UserError, match=r"refusing to extract .*'\.\./escaped\.txt'"):
        dm.load_splits()
    assert not (tmp_path / "escaped.txt").exists()


def test_damaged_tar_is_a_user_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "cut.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    with pytest.raises(UserError, match=rf"could not extract {bad}"):
        archive.safe_extract_tar(bad, tmp_path / "dest")
