"""The ImageFolder-style dataset: discovery, resizing, label order, and every error/warning path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from data_fixtures import JPEG_STEP, decode_label, write_image_folder

from adv_smooth.data.folder import FolderDataModule
from adv_smooth.utils.errors import UserError
from tests.conftest import TINY_JOB
from tests.test_bad_inputs import completed_results, error_lines, run_process


def test_loads_resizes_and_labels_by_sorted_class_names(folder_root: tuple[Path, dict]) -> None:
    root, info = folder_root
    dm = FolderDataModule(root=root, size=24, val_fraction=0.0)
    dm.setup()
    assert dm.classes == ["ant", "bee", "cat"] == info["classes"]
    train_x, train_y = dm.splits.train
    assert train_x.shape == (9, 3, 24, 24) and train_x.dtype == torch.uint8 and train_y.dtype == torch.int64
    assert train_y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [decode_label(img, JPEG_STEP) for img in train_x] == train_y.tolist()
    test_x, test_y = dm.splits.test
    assert test_x.shape == (6, 3, 24, 24) and [decode_label(img, JPEG_STEP) for img in test_x] == test_y.tolist()
    assert len(dm.splits.val[1]) == 0  # no val/ folder and val_fraction=0


def test_rectangular_size_grayscale_and_val_folder(tmp_path: Path) -> None:
    counts = {"train": {"a": 4, "b": 4}, "val": {"a": 1, "b": 2}, "test": {"a": 1, "b": 1}}
    write_image_folder(tmp_path, counts, sizes=[(30, 30)], ext=".jpg")
    dm = FolderDataModule(root=tmp_path, size=[16, 20], channels=1, val_fraction=0.5)
    dm.setup()
    assert dm.splits.train[0].shape == (8, 1, 16, 20)  # the val/ folder is used, nothing carved off
    assert dm.splits.val[1].tolist() == [0, 1, 1]
    assert dm.channels == 1 and dm.image_size == (16, 20) and len(dm.mean) == 1


def test_non_image_files_are_skipped_with_a_warning(folder_root: tuple[Path, dict]) -> None:
    root, _ = folder_root
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    (root / "train" / "cat" / ".DS_Store").write_bytes(b"\0")  # hidden: skipped silently
    (root / "train" / "README.md").write_text("top-level file")
    dm = FolderDataModule(root=root, val_fraction=0.0)
    with pytest.warns(UserWarning) as record:
        dm.setup()
    messages = [str(w.message) for w in record]
    assert len(messages) == 1
    assert str(root / "train" / "cat" / "notes.txt") in messages[0] and "README.md" in messages[0]
    assert ".DS_Store" not in messages[0]
    assert len(dm.splits.train[1]) == 9


def test_empty_class_folder_is_an_error_naming_it(folder_root: tuple[Path, dict]) -> None:
    root, _ = folder_root
    (root / "train" / "dog").mkdir()
    (root / "train" / "dog" / "readme.txt").write_text("no images here")
    with pytest.raises(UserError, match=f"class folder {root / 'train' / 'dog'} contains no image"):
        FolderDataModule(root=root).setup()


def test_test_classes_must_match_train(folder_root: tuple[Path, dict]) -> None:
    root, _ = folder_root
    shutil.rmtree(root / "test" / "bee")
    shutil.copytree(root / "test" / "ant", root / "test" / "wasp")
    with pytest.raises(UserError) as info:
        FolderDataModule(root=root).setup()
    message = str(info.value)
    assert str(root / "test") in message and "['bee']" in message and "['wasp']" in message
    assert "\n" not in message


def test_corrupt_image_is_an_error_naming_the_file(folder_root: tuple[Path, dict]) -> None:
    root, _ = folder_root
    bad = root / "train" / "bee" / "1.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(UserError, match=f"cannot read image {bad}"):
        FolderDataModule(root=root).setup()


def test_missing_root_or_split_folders(tmp_path: Path, folder_root: tuple[Path, dict]) -> None:
    with pytest.raises(UserError, match="^root=None is invalid"):
        FolderDataModule(root=None)
    with pytest.raises(UserError, match="is not a folder"):
        FolderDataModule(root=tmp_path / "nope").setup()
    root, _ = folder_root
    shutil.rmtree(root / "test")
    with pytest.raises(UserError, match=f"{root / 'test'} not found"):
        FolderDataModule(root=root).setup()


@pytest.mark.parametrize(("key", "value"), [("size", 0), ("size", [1, 2, 3]), ("channels", 2)])
def test_invalid_options(tmp_path: Path, key: str, value: object) -> None:
    with pytest.raises(UserError, match=f"^{key}="):
        FolderDataModule(root=tmp_path, **{key: value})


# -- symbolic links: followed only while they stay under the root (issue 26, item 2) ------------------------------
@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Valid images in a folder beside the dataset root, so a link to them would really load them."""
    write_image_folder(tmp_path / "elsewhere", {"train": {"c": 2}}, sizes=[(32, 32)])
    return tmp_path / "elsewhere" / "train" / "c"


@pytest.mark.parametrize(
    "link",
    ["train/etc_link", "train/ant/link.png", "train/ant/sub", "test/bee/link.png", "train"],
    ids=["class folder", "image file", "subfolder", "test image", "split folder"],
)
def test_a_symlink_leaving_the_root_is_refused_naming_it(
    folder_root: tuple[Path, dict], outside: Path, link: str
) -> None:
    root, _ = folder_root
    path = root / link
    if link == "train":
        shutil.rmtree(path)
        path.symlink_to(outside.parent)
    else:
        path.symlink_to(outside / "0.png" if link.endswith(".png") else outside)
    with pytest.raises(UserError) as info:
        FolderDataModule(root=root).setup()
    message = str(info.value)
    assert message.startswith(f"{path} is a symbolic link to ") and "outside root=" in message, message
    assert "\n" not in message


def test_the_system_folder_of_the_issue_is_refused(folder_root: tuple[Path, dict]) -> None:
    """The reproduction itself: `train/etc_link -> /etc` was scanned as a class."""
    root, _ = folder_root
    (root / "train" / "etc_link").symlink_to("/etc")
    with pytest.raises(UserError, match=f"{root / 'train' / 'etc_link'} is a symbolic link to /etc, outside"):
        FolderDataModule(root=root).setup()


def test_symlinks_inside_the_root_are_followed(folder_root: tuple[Path, dict], tmp_path: Path) -> None:
    """Links that stay under the root (a shared image, a root that is itself a link) load as before."""
    root, _ = folder_root
    (root / "train" / "ant" / "shared.png").symlink_to(Path("..") / "bee" / "0.png")
    alias = tmp_path / "alias"
    alias.symlink_to(root)
    dm = FolderDataModule(root=alias, val_fraction=0.0)
    dm.setup()
    assert len(dm.splits.train[1]) == 10


@pytest.mark.parametrize("target", ["..", "../bee"], ids=["loop to the parent", "a class linked twice"])
def test_a_folder_reached_twice_is_refused(folder_root: tuple[Path, dict], target: str) -> None:
    root, _ = folder_root
    (root / "train" / "ant" / "loop").symlink_to(target)
    with pytest.raises(UserError, match=f"{root / 'train' / 'ant' / 'loop'} leads to .*which the scan also reaches as"):
        FolderDataModule(root=root).setup()


# -- fewer than two classes (issue 26, item 4) ----------------------------------------------------------------
def test_one_class_is_refused(tmp_path: Path) -> None:
    write_image_folder(tmp_path, {"train": {"only": 3}, "test": {"only": 1}})
    with pytest.raises(UserError) as info:
        FolderDataModule(root=tmp_path).setup()
    message = str(info.value)
    assert f"{tmp_path / 'train'} has 1 class folder ('only')" in message and "at least 2" in message
    assert "\n" not in message


# -- what a shell sees: exit status 2 and the error line, from a real process ---------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("case", ["symlink out of the root", "one class"])
def test_real_process_refuses_with_exit_2(tmp_path: Path, case: str) -> None:
    """`python -m adv_smooth dataset=folder ...` on the issue's two folders: exit 2, one `error:` line naming the
    link or the folder, no traceback, nothing that looks completed. (Lightning's start-up info lines that may come
    before it are issue 26 item 12's, about every error found after the Trainer is built.)"""
    root = tmp_path / "images"
    if case == "one class":
        write_image_folder(root, {"train": {"only": 3}, "test": {"only": 1}})
        culprit = f"{root / 'train'} has 1 class folder ('only')"
    else:
        write_image_folder(root, {"train": {"a": 3, "b": 3}, "test": {"a": 1, "b": 1}})
        (root / "train" / "etc_link").symlink_to("/etc")
        culprit = f"{root / 'train' / 'etc_link'} is a symbolic link to /etc"
    run = tmp_path / "run"
    code, stderr = run_process(
        "adv_smooth", "dataset=folder", f"dataset.root={root}", *TINY_JOB, f"hydra.run.dir={run}"
    )
    errors = [line for line in error_lines(stderr) if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and culprit in errors[0], stderr
    assert error_lines(stderr)[-1] == errors[0] and "Traceback" not in stderr
    assert not completed_results(run)
