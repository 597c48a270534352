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
