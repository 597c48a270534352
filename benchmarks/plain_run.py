"""The plain PyTorch loop `benchmarks/run.py` times a whole project run against: same training, same final test.

    python -m benchmarks.plain_run SPEC.json     (written by benchmarks/run.py from the project's composed config)

What a careful user would write by hand around the same pieces: the project's data loader class for decoding
(so both sides read the same images the same way: `load_splits` and the validation carve, whose images this
loop never uses), a shuffled index loop over the uint8 tensors with the same on-the-fly augmentation
(`adv_smooth.data.base.augment`), the same network, SGD and step schedule, the project's one training objective
(`adv_smooth.defenses.objective.training_objective`, never a copy of the loss), then the same attacks at the
same levels on the same test images through `evaluate_batch`, sanity level included. No validation, no
checkpoint, no logger, no progress bar: everything else a project run does is what the ratio charges it for.

Only named classes are built (`DATASETS`, `ATTACKS`): the spec carries keyword arguments, never code paths.
Prints one JSON line (test accuracy clean and per attack and level, wall seconds of each phase).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

START = time.perf_counter()

import torch  # noqa: E402

from adv_smooth.attacks import FGSM, PGD, GaussianNoise  # noqa: E402
from adv_smooth.attacks.apgd import APGD  # noqa: E402
from adv_smooth.attacks.fmn import FMN  # noqa: E402
from adv_smooth.attacks.square import Square  # noqa: E402
from adv_smooth.data.base import augment  # noqa: E402
from adv_smooth.data.digits import DigitsDataModule  # noqa: E402
from adv_smooth.data.folder import FolderDataModule  # noqa: E402
from adv_smooth.defenses.base import Defense, TrainBatch  # noqa: E402
from adv_smooth.defenses.objective import training_objective  # noqa: E402
from adv_smooth.models import PreActResNet  # noqa: E402
from adv_smooth.robustness.batch import evaluate_batch  # noqa: E402

DATASETS = {"digits": DigitsDataModule, "folder": FolderDataModule}
ATTACKS = {cls.__name__: cls for cls in (FGSM, PGD, APGD, Square, FMN, GaussianNoise)}


def build_attacks(spec: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`{label: {"class": "PGD", "kwargs": {...}}}` -> attack objects (only the classes of `ATTACKS`)."""
    return {label: ATTACKS[a["class"]](**a["kwargs"]) for label, a in spec.items()}


def run(spec: dict[str, Any]) -> dict[str, Any]:
    times: dict[str, float] = {"imports_s": time.perf_counter() - START}
    torch.manual_seed(spec["seed"])
    t = time.perf_counter()
    data = DATASETS[spec["dataset"]["kind"]](**spec["dataset"]["kwargs"])
    data.setup("fit")  # decode, carve the validation split off (its images are never used here)
    (x_train, y_train), (x_test, y_test) = data.splits.train, data.splits.test
    mean, std = data.mean, data.std
    times["data_s"] = time.perf_counter() - t

    d = spec["dataset"]["kwargs"]
    net = PreActResNet(len(data.classes), x_train.shape[1], mean=list(mean), std=list(std), **spec["model"])
    o = spec["optim"]
    optimizer = torch.optim.SGD(net.parameters(), lr=o["lr"], momentum=o["momentum"], weight_decay=o["weight_decay"])
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, o["milestones"], o["gamma"])
    defense, batch_size = Defense(), d["batch_size"]
    padding = d.get("padding") or max(1, x_train.shape[2] // 8)
    t = time.perf_counter()
    net.train()
    for _ in range(spec["epochs"]):
        order = torch.randperm(len(y_train))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            x = x_train[idx].float().div_(255)
            if d.get("augment"):
                x = augment(x, padding, d.get("flip", True), pad_mode=d.get("pad_mode", "reflect"))
            step = training_objective(net, defense, TrainBatch.clean(x, y_train[idx]))
            optimizer.zero_grad(set_to_none=True)
            step.loss.backward()
            optimizer.step()
        schedule.step()
    times["train_s"] = time.perf_counter() - t

    t = time.perf_counter()
    attacks, levels = build_attacks(spec["attacks"]), spec["levels"]
    n_test = spec["test_images"] or len(y_test)
    eval_batch = d.get("eval_batch_size") or max(batch_size, 256)
    net.eval()
    clean, correct = [], {name: [] for name in attacks}
    for start in range(0, n_test, eval_batch):
        x = x_test[start : min(start + eval_batch, n_test)].float().div_(255)
        y = y_test[start : min(start + eval_batch, n_test)]
        out = evaluate_batch(net, x, y, attacks, levels, spec["cascade"], spec["sanity_snr_db"])
        clean.append(out["clean_pred"] == y)
        for name in attacks:
            correct[name].append(out["attacks"][name]["adv_correct"] == 1)
    times["test_s"] = time.perf_counter() - t
    acc = {name: torch.cat(c, dim=1).float().mean(dim=1).tolist() for name, c in correct.items()}
    return {"test_acc": float(torch.cat(clean).float().mean()), "attack_acc": acc, "n_test": n_test, **times}


def main(argv: list[str]) -> None:
    spec = json.loads(Path(argv[0]).read_text())
    print(json.dumps(run(spec)))


if __name__ == "__main__":
    main(sys.argv[1:])
