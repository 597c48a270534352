"""The extension recipes of docs/architecture.md, done once: a new attack is one Python file and one YAML, a new
defense one Python file and one YAML, a further torchvision dataset one YAML and no Python. Nothing else in the
package or in conf/ is edited (the test works on a copy of conf/ and a module of its own), and the full training
task runs with all three, its results naming the new attack and the new loss term."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import CONF, FAST, compose_config
from tests.data.data_fixtures import write_mnist

ATTACK_PY = '''
"""A random-sign perturbation at the budget: the L-inf cube's corners, no gradient."""
from adv_smooth.attacks.base import Attack


class RandomSign(Attack):
    name = "random_sign"
    uses_labels = False

    def passes_per_image(self, levels):
        return 0.0

    def _perturbation(self, problem, eps, prepared):
        return self._normal(problem.z).sign() * eps
'''
DEFENSE_PY = '''
"""A logit penalty: weight * mean squared logit, one loss term through the `loss_terms` hook."""
from dataclasses import dataclass

from adv_smooth.defenses.base import Defense


@dataclass
class LogitPenalty(Defense):
    weight: float = 0.01

    def loss_terms(self, batch, logits, activations):
        return {"logit_l2": self.weight * logits.square().mean()}
'''
ATTACK_YAML = "_target_: my_extension_attack.RandomSign\nnorm: linf\nbudget: snr\n"
DEFENSE_YAML = (
    "name: logit_penalty\nweight: 0.01\ncomponents:\n  logit_penalty:\n"
    "    _target_: my_extension_defense.LogitPenalty\n    weight: ${defense.weight}\n"
)
DATASET_YAML = (
    "# @package _global_\ndataset:\n  _target_: adv_smooth.data.torchvision_data.TorchvisionDataModule\n"
    "  name: KMNIST\n  root: data\n  download: false\n  batch_size: 16\n  val_fraction: 0.25\n"
)


@pytest.mark.slow
def test_an_attack_a_defense_and_a_torchvision_dataset_each_touch_only_their_own_files(tmp_path, monkeypatch):
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    before = {p.relative_to(conf) for p in conf.rglob("*.yaml")}
    code = tmp_path / "code"
    code.mkdir()
    (code / "my_extension_attack.py").write_text(ATTACK_PY)  # attack: one Python file ...
    (conf / "attack" / "random_sign.yaml").write_text(ATTACK_YAML)  # ... and one YAML
    (code / "my_extension_defense.py").write_text(DEFENSE_PY)  # defense: one Python file ...
    (conf / "defense" / "logit_penalty.yaml").write_text(DEFENSE_YAML)  # ... and one YAML
    (conf / "dataset" / "kmnist.yaml").write_text(DATASET_YAML)  # dataset: one YAML, no Python
    added = {p.relative_to(conf) for p in conf.rglob("*.yaml")} - before
    assert added == {Path("attack/random_sign.yaml"), Path("defense/logit_penalty.yaml"), Path("dataset/kmnist.yaml")}
    monkeypatch.syspath_prepend(str(code))
    write_mnist(tmp_path / "data", "KMNIST", train_labels=[i % 10 for i in range(40)], test_labels=list(range(10)) * 2)

    from adv_smooth.app.training_run import train

    cfg = compose_config(
        *FAST,
        "dataset=kmnist",
        f"dataset.root={tmp_path / 'data'}",
        "defense=logit_penalty",
        "~eval.attacks.fgsm",
        "~eval.attacks.pgd",
        "~eval.attacks.pgd_l2",
        "+attack@eval.attacks.sign=random_sign",
        "eval.snr_levels=[20]",
        "eval.sanity_snr_db=null",
        output_dir=tmp_path / "run",
        conf=conf,
    )
    results = train(cfg)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["status"] == "completed" and results["metrics"]["test/acc"] == saved["metrics"]["test/acc"]
    assert "train/logit_l2_epoch" in saved["fit"]  # the new defense's term was trained on
    assert any("sign" in key for key in saved["metrics"])  # the new attack was evaluated on the test split
    assert "my_extension_attack" in sys.modules and "my_extension_defense" in sys.modules
