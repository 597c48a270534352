"""The config reference page is generated from conf/ and cannot drift: it equals the generator's output, and
every key of every YAML file under conf/ has a row."""

from __future__ import annotations

from pathlib import Path

import yaml
from omegaconf import OmegaConf

from adv_smooth.app.key_reference import CONF_DIR, UNREADABLE, describe_keys, key_meaning, render_markdown

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "reference" / "config.md"
REGENERATE = "python -m adv_smooth.app.key_reference > docs/reference/config.md"


def _keys(node: object, path: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}" if path else str(key)
            out.add(child)
            out |= _keys(value, child)
    return out


def test_the_committed_page_is_the_generated_one() -> None:
    assert PAGE.read_text() == render_markdown(), f"docs/reference/config.md is stale: run `{REGENERATE}`"


def test_every_key_of_every_yaml_file_has_a_row() -> None:
    rows = {(doc.file, doc.local_key) for doc in describe_keys()}
    files = sorted(CONF_DIR.rglob("*.yaml"))
    assert len(files) > 50
    missing = []
    for path in files:
        rel = str(path.relative_to(CONF_DIR))
        try:
            data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        except yaml.YAMLError:  # Hydra cannot load it either: the page must say so
            missing += [] if (rel, "") in rows and any(d.key == UNREADABLE for d in describe_keys()) else [rel]
            continue
        missing += [f"{rel}: {key}" for key in sorted(_keys(data)) if (rel, key) not in rows]
    assert not missing, missing[:20]
    page = PAGE.read_text()
    for path in files:
        rel = path.relative_to(CONF_DIR)
        title = f"`{path.stem}.yaml`" if len(rel.parts) == 1 else f"`{'/'.join(rel.parts[:-1])}={path.stem}`"
        assert title in page, f"no section for conf/{rel}"


def test_meanings_types_and_choices_come_from_comments_signatures_and_docstrings() -> None:
    docs = {(doc.file, doc.key): doc for doc in describe_keys()}
    pgd_norm = docs["attack/pgd.yaml", "eval.attacks.<label>.norm"]
    assert pgd_norm.type == "str" and pgd_norm.allowed == "linf, l2"  # Attack's signature and Args section
    assert docs["attack/pgd.yaml", "eval.attacks.<label>.steps"].meaning.startswith("gradient steps")
    labels = docs["defense/adv.yaml", "defense.labels"]  # a `labels: true | predicted` line of the file's comment
    assert labels.allowed == "true, predicted"
    assert docs["defense/smooth.yaml", "defense.knn_self"].allowed == "true, false"
    assert docs["config.yaml", "resume"].meaning.startswith("Resume a run")  # the comment above the key
    assert key_meaning("resume").startswith("Resume a run")


def test_every_key_has_a_meaning() -> None:
    """Issue 30: each key of conf/ says what it does, from a source that cannot drift: a comment of its YAML file,
    the docstring of the class it feeds (this package's, or Lightning's and torch's as installed), the option file
    composed at its place, or the key it is interpolated into. No exemptions."""
    bare = [f"{doc.file}: {doc.key}" for doc in describe_keys() if doc.meaning in ("—", "")]
    assert not bare, f"{len(bare)} keys without a meaning (add a `# ...` comment or an Args line): {bare[:20]}"


def test_third_party_keys_take_the_installed_docstring() -> None:
    """trainer.* and the Lightning callbacks' keys: the first sentence of the installed class's Args entry, so the
    page follows a Lightning upgrade (the drift test above then asks for a regeneration)."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import LearningRateMonitor

    from adv_smooth.app.key_reference import _docstring_args, first_sentence

    docs = {(doc.file, doc.key): doc.meaning for doc in describe_keys()}
    trainer = _docstring_args(pl.Trainer.__init__.__doc__)
    assert docs["trainer/default.yaml", "trainer.max_epochs"] == first_sentence(trainer["max_epochs"])
    assert docs["trainer/default.yaml", "trainer.devices"] == first_sentence(trainer["devices"])
    assert docs["callbacks/default.yaml", "callbacks.lr_monitor.logging_interval"].startswith("set to `'epoch'`")
    assert "logging_interval" in _docstring_args(LearningRateMonitor.__doc__)
    # a key set by a global preset (debug) of a node another file builds (trainer): the Trainer's text too
    assert docs["debug/default.yaml", "trainer.limit_train_batches"].startswith("How much of training dataset")
    # an attack composed under a label (`/attack@attacks.apgd_ce: apgd`): the attack option's meaning
    apgd_steps = docs["attack/apgd.yaml", "eval.attacks.<label>.steps"]
    assert docs["eval/autoattack.yaml", "eval.attacks.apgd_ce.steps"] == apgd_steps
    # a key interpolated into another (defense.norm -> the training attack's norm)
    assert docs["defense/pgd.yaml", "defense.norm"].startswith('"linf" or "l2"')


def test_first_sentence_skips_abbreviations_brackets_and_code() -> None:
    from adv_smooth.app.key_reference import first_sentence

    assert first_sentence("blocks per stage, e.g. [2, 2] (i.e. ResNet-18). More.") == (
        "blocks per stage, e.g. [2, 2] (i.e. ResNet-18)."
    )
    assert first_sentence("momentum factor (default: 0)") == "momentum factor (default: 0)"
    assert first_sentence("the `x. y` value. Then") == "the `x. y` value."
