"""Fixture writers: tiny datasets in each REAL on-disk format, so the real loading code runs on them.

One writer per format (CIFAR pickles, SVHN .mat, the Tiny ImageNet tree, an ImageFolder tree). Every
image is coded so a test can tell where it went: channel 0 is a constant `label * step` (lossless
formats use step 1; JPEG fixtures a wide step that survives compression), channel 1 a gradient that
depends on the image index (so the per-channel std is not trivial), channel 2 the complement of 0.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.io
import torch
from PIL import Image

JPEG_STEP = 40  # label spacing in channel 0 for lossy fixtures: robust to JPEG's few-level errors


def coded_image(label: int, index: int, size: tuple[int, int] = (32, 32), step: int = 1) -> np.ndarray:
    """(H, W, 3) uint8 image whose channel 0 encodes `label` (see module docstring)."""
    h, w = size
    code = np.full((h, w), label * step, dtype=np.int64)
    gradient = np.minimum(255, 5 * index + np.arange(h)[:, None] + np.arange(w)[None, :])
    return np.stack([code, gradient, 255 - code], axis=-1).astype(np.uint8)


def decode_label(image: torch.Tensor, step: int = 1) -> int:
    """Inverse of `coded_image` for a (C, H, W) tensor (mean of channel 0, rounded to the step)."""
    return int(round(image[0].double().mean().item() / step))


def _coded_batch(labels: Sequence[int], start: int = 0, step: int = 1) -> np.ndarray:
    return np.stack([coded_image(lab, start + i, step=step) for i, lab in enumerate(labels)])


# -- CIFAR (python pickle batches) ----------------------------------------------------------------
def write_cifar(root: Path, variant: str, train_labels: Sequence[int], test_labels: Sequence[int]) -> dict:
    """Write `cifar-10-batches-py` (5 data batches, test_batch, batches.meta) or `cifar-100-python`.

    Returns the images as NCHW uint8 numpy arrays with their labels, for the assertions.
    """
    cifar100 = variant == "cifar100"
    folder = root / ("cifar-100-python" if cifar100 else "cifar-10-batches-py")
    folder.mkdir(parents=True, exist_ok=True)
    train = _coded_batch(train_labels).transpose(0, 3, 1, 2)  # NCHW, CIFAR's row layout
    test = _coded_batch(test_labels, start=len(train_labels)).transpose(0, 3, 1, 2)
    label_key = "fine_labels" if cifar100 else "labels"

    def dump(name: str, images: np.ndarray, labels: Sequence[int]) -> None:
        entry = {
            "batch_label": name,
            label_key: [int(x) for x in labels],
            "data": np.ascontiguousarray(images).reshape(len(images), 3 * 32 * 32),
            "filenames": [f"{name}_{i}.png" for i in range(len(images))],
        }
        if cifar100:
            entry["coarse_labels"] = [int(x) // 5 for x in labels]
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)

    if cifar100:
        classes = [f"fine_{i}" for i in range(100)]
        dump("train", train, train_labels)
        dump("test", test, test_labels)
        meta = {"fine_label_names": classes, "coarse_label_names": [f"coarse_{i}" for i in range(20)]}
        meta_name = "meta"
    else:
        classes = [f"class_{i}" for i in range(10)]
        chunks = np.array_split(np.arange(len(train_labels)), 5)
        for k, idx in enumerate(chunks, start=1):
            dump(f"data_batch_{k}", train[idx], [train_labels[i] for i in idx])
        dump("test_batch", test, test_labels)
        meta = {"label_names": classes, "num_cases_per_batch": len(chunks[0]), "num_vis": 3072}
        meta_name = "batches.meta"
    with open(folder / meta_name, "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return {
        "folder": folder,
        "train": (train, np.asarray(train_labels)),
        "test": (test, np.asarray(test_labels)),
        "classes": classes,
    }


# -- SVHN (MATLAB .mat) ---------------------------------------------------------------------------
def write_svhn(folder: Path, split: str, labels: Sequence[int], start: int = 0) -> np.ndarray:
    """Write `<split>_32x32.mat`: X (32, 32, 3, N) uint8, y (N, 1) with SVHN's 10 for digit 0.

    Returns the images as NCHW (what the loader should produce, in the same order).
    """
    folder.mkdir(parents=True, exist_ok=True)
    images = _coded_batch(labels, start=start)  # NHWC
    y = np.asarray([10 if lab == 0 else lab for lab in labels], dtype=np.uint8).reshape(-1, 1)
    scipy.io.savemat(folder / f"{split}_32x32.mat", {"X": images.transpose(1, 2, 3, 0), "y": y})
    return images.transpose(0, 3, 1, 2)


# -- Tiny ImageNet (folder tree of JPEGs) ---------------------------------------------------------
def write_tiny_imagenet(root: Path, wnids: Sequence[str], n_train: int, val_wnids: Sequence[str]) -> dict:
    """Write the official `tiny-imagenet-200/` layout with 64x64 JPEGs under `root`.

    `wnids.txt` keeps the given (unsorted) order; the loader sorts. Train image 0 of the first wnid
    is grayscale (the real set has some) to exercise the RGB conversion. Returns the sorted classes.
    """
    base = root / "tiny-imagenet-200"
    classes = sorted(wnids)
    (base).mkdir(parents=True, exist_ok=True)
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (base / "words.txt").write_text("".join(f"{w}\tthing {w}\n" for w in wnids))

    def save(path: Path, label: int, index: int, gray: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        img = Image.fromarray(coded_image(label, index, (64, 64), step=JPEG_STEP))
        (img.convert("L") if gray else img).save(path, "JPEG", quality=95)

    index = 0
    for k, wnid in enumerate(wnids):
        for i in range(n_train):
            save(base / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", classes.index(wnid), index, gray=k == i == 0)
            index += 1
        (base / "train" / wnid / f"{wnid}_boxes.txt").write_text(f"{wnid}_0.JPEG\t0\t0\t63\t63\n")
    lines = []
    for i, wnid in enumerate(val_wnids):
        save(base / "val" / "images" / f"val_{i}.JPEG", classes.index(wnid), index)
        index += 1
        lines.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t63\t63")
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    save(base / "test" / "images" / "test_0.JPEG", 0, index)  # unlabelled: must be ignored
    return {"folder": base, "classes": classes}


def zip_tree(folder: Path, zip_path: Path) -> Path:
    """Zip `folder` with its own name as the top-level entry, like the official archive."""
    with zipfile.ZipFile(zip_path, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(folder.parent).as_posix())
    return zip_path


# -- ImageFolder tree -----------------------------------------------------------------------------
def write_image_folder(
    root: Path, counts: dict[str, dict[str, int]], sizes: Sequence[tuple[int, int]] = ((32, 32),), ext: str = ".png"
) -> dict[str, list[str]]:
    """Write `root/<split>/<class>/<i><ext>`; `counts[split][class]` images each, sizes cycling.

    Labels are coded as the index of the class in the sorted class list (what the loader assigns).
    """
    classes = sorted(counts["train"])
    index = 0
    for split, per_class in counts.items():
        for cls, n in per_class.items():
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            label = classes.index(cls) if cls in classes else 0
            for i in range(n):
                size = sizes[index % len(sizes)]
                Image.fromarray(coded_image(label, index, size, step=JPEG_STEP)).save(root / split / cls / f"{i}{ext}")
                index += 1
    return {"classes": classes}


def write_mnist(root: Path, name: str, train_labels: Sequence[int], test_labels: Sequence[int]) -> dict:
    """torchvision's MNIST-family layout: `<root>/<name>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte` (IDX
    files: big-endian magic 0x0803 / 0x0801, the dimensions, then the bytes). Image i: channel 0 of
    `coded_image`, 28x28, so `decode_label` reads it back."""
    raw = root / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    written = {}
    for prefix, labels in (("train", train_labels), ("t10k", test_labels)):
        images = np.stack([coded_image(lab, i, size=(28, 28))[..., 0] for i, lab in enumerate(labels)])
        header = np.array([0x0803, len(labels), 28, 28], dtype=">i4").tobytes()
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.astype(np.uint8).tobytes())
        label_bytes = np.array(labels, dtype=np.uint8).tobytes()
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            np.array([0x0801, len(labels)], dtype=">i4").tobytes() + label_bytes
        )
        written[prefix] = (images, np.array(labels))
    return written
