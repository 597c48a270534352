"""Any torchvision classification dataset, decoded once into uint8 NCHW tensors: a new one is a YAML, no Python.

    dataset:
      _target_: adv_smooth.data.torchvision_data.TorchvisionDataModule
      name: FashionMNIST              # a class of torchvision.datasets, by name only
      train_args: {train: true}       # how that class asks for its splits (SVHN-style classes: {split: train})
      test_args: {train: false}

Only a class of `torchvision.datasets` can be named (never an import path), so a config read back from a run
dir cannot make this module import anything else. The images come from the class's own in-memory array
(`data`: NHW, NHWC or NCHW uint8, as MNIST, CIFAR and SVHN keep them) or, for classes that decode lazily, from
reading every item once. A download uses the class's own code only where that code extracts nothing unsafe:
gzip'd files (the MNIST family); a tar archive (CIFAR-style `url` + `tgz_md5`) goes through this project's
checked extraction (`archive.download_and_extract`), since torchvision's `extract_archive` applies no filter;
any other class must find its files under `dataset.root` (download=false).
The special datasets keep their own modules: CIFAR (checksum diagnosis), SVHN (extra split), Tiny ImageNet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torchvision.datasets as tv_datasets
from PIL import Image

from adv_smooth.data import archive
from adv_smooth.data.base import ImageDataModule, Split, Splits
from adv_smooth.utils.errors import UserError, require


def _dataset_class(name: object) -> type:
    classes = sorted(n for n in tv_datasets.__all__ if isinstance(getattr(tv_datasets, n, None), type))
    require(
        isinstance(name, str) and name in classes,
        "name",
        name,
        f"a torchvision.datasets class: {', '.join(classes)}",
    )
    return getattr(tv_datasets, name)


def to_uint8_nchw(data: Any) -> torch.Tensor:
    """A dataset's image array (NHW, NHWC with 1 or 3 channels, or NCHW) as a contiguous uint8 NCHW tensor."""
    array = data.numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
    if array.dtype != np.uint8:
        raise UserError(f"torchvision images of dtype {array.dtype} are not 8-bit: this module holds uint8 images")
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4 and array.shape[-1] in (1, 3) and array.shape[1] not in (1, 3):
        array = array.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(array))


def _labels(dataset: Any) -> torch.Tensor:
    values = next((getattr(dataset, k) for k in ("targets", "labels") if getattr(dataset, k, None) is not None), None)
    if values is None:
        values = [dataset[i][1] for i in range(len(dataset))]
    return torch.as_tensor(np.asarray(values), dtype=torch.int64)


def _images(dataset: Any) -> torch.Tensor:
    data = getattr(dataset, "data", None)
    if isinstance(data, (np.ndarray, torch.Tensor)) and len(data) == len(dataset):
        return to_uint8_nchw(data)
    items = [dataset[i][0] for i in range(len(dataset))]  # lazily decoded classes: PIL images, read once
    return to_uint8_nchw(
        np.stack([np.asarray(img.convert("RGB") if isinstance(img, Image.Image) else img) for img in items])
    )


class TorchvisionDataModule(ImageDataModule):
    """`torchvision.datasets.<name>` at `root`, its train and test splits as the class defines them.

    Args:
        name: the class of `torchvision.datasets`, by name (MNIST, FashionMNIST, ...).
        train_args: the keyword arguments that class takes for its training split (e.g. {train: true}).
        test_args: the keyword arguments that class takes for its test split (e.g. {train: false}).
    """

    def __init__(
        self,
        name: str = "MNIST",
        train_args: Mapping[str, Any] | None = None,
        test_args: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.source = _dataset_class(name)
        super().__init__(**kwargs)
        self.name = name
        self.train_args = dict(train_args if train_args is not None else {"train": True})
        self.test_args = dict(test_args if test_args is not None else {"train": False})

    def _split(self, args: Mapping[str, Any]) -> tuple[Split, list[Any] | None]:
        """One split's (images, labels) and the class names the dataset declares, if any."""
        try:
            dataset = self.source(str(self.root), download=False, **args)
        except (RuntimeError, OSError) as err:
            raise UserError(
                f"{self.name} not found under root={str(self.root)!r} ({archive.one_line(err)}): "
                "set download=true or place its files there"
            ) from err
        return (_images(dataset), _labels(dataset)), getattr(dataset, "classes", None)

    def prepare_data(self) -> None:
        if self.download:
            self._download()

    def _download(self) -> None:
        src = self.source
        if hasattr(src, "url") and hasattr(src, "tgz_md5"):  # one tar archive: extracted with our checks
            if not all((self.root / src.base_folder / f).is_file() for f, _ in [*src.train_list, *src.test_list]):
                archive.download_and_extract(src.url, self.root, src.filename, src.tgz_md5)
            return
        resources = [name for name, *_ in getattr(src, "resources", [])]
        gzip_only = resources and all(r.endswith(".gz") and not r.endswith(".tar.gz") for r in resources)
        if not gzip_only:
            raise UserError(
                f"download=true: torchvision's {self.name} download would extract archives without checks; "
                f"place its files under root={str(self.root)!r} and set download=false"
            )
        try:
            src(str(self.root), download=True, **self.train_args)  # gunzips its files; nothing to traverse
        except (RuntimeError, OSError) as err:
            raise UserError(f"could not download {self.name} into {self.root}: {archive.one_line(err)}") from err

    def load_splits(self) -> Splits:
        (train, _), (test, classes) = self._split(self.train_args), self._split(self.test_args)
        n = int(max(train[1].max(), test[1].max())) + 1
        return Splits(train=train, test=test, classes=[str(c) for c in (classes or range(n))])
