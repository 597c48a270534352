"""`--help`'s config with each key's one-line meaning, from the source of the generated reference.

Hydra's help dumps the composed config as bare YAML. `conf/hydra/default.yaml` puts `${described_config:}` in
its help template instead: this resolver renders the same YAML (unresolved, as Hydra does) with `# meaning`
after every key that `key_reference.describe_keys()` knows (the comments of conf/ and the constructors'
docstrings, as in docs/reference/config.md); for a key several options define (dataset.batch_size), the chosen
option's meaning.
"""

from __future__ import annotations

import re

from omegaconf import DictConfig, OmegaConf

RESOLVER = "described_config"
WIDTH = 100  # a meaning longer than this is cut (the reference has it whole)
_KEY = re.compile(r"^(?P<indent> *)(?P<key>[^\s#'\"-][^:]*|'[^']*'|\"[^\"]*\"):(?P<rest>.*)$")


def _sentence(text: str) -> str:
    """The first sentence (`key_reference.first_sentence`), cut to `WIDTH` characters."""
    from adv_smooth.app.key_reference import first_sentence

    text = first_sentence(text)
    return text if len(text) <= WIDTH else text[: WIDTH - 1].rstrip() + "…"


_BORROWED = re.compile(r"\s*\(from conf/[^)]*\)")
_GLOBAL_GROUPS = ("debug", "experiment", "row", "hparams_search")  # options that set keys of other groups


def meanings(choices: dict[str, str] | None = None) -> dict[str, str]:
    """Composed key -> the first sentence of its meaning: conf/config.yaml's and the chosen options' first (an
    attack chosen as `attack@eval.attacks.pgd` describes the keys under `eval.attacks.pgd`), then the same key in
    another option of its group (presets share their keys); each key under `eval.attacks.<label>` as the attack
    options describe it."""
    from adv_smooth.app.key_reference import describe_keys

    chosen: dict[tuple[str, str], str | None] = {}  # (group, option) -> where its keys go (None: as documented)
    for name, option in (choices or {}).items():
        group, _, package = name.partition("@")
        chosen[(group.rsplit("/", 1)[-1] if package else group, option)] = package or None
    rank = _with_bases(chosen)
    first: dict[str, str] = {}  # from the primary config or a chosen option
    first_rank: dict[str, int] = {}  # 0: the chosen option's own, 1: an option it builds on, ...
    fallback: dict[str, str] = {}  # from another option of the key's group
    for doc in describe_keys():
        if doc.meaning in ("—", "") or doc.local_key == "defaults" or doc.meaning.startswith("a mapping"):
            continue
        if any(f"(from conf/{g}/" in doc.meaning for g in _GLOBAL_GROUPS):  # a preset's comment, not the key's
            continue
        meaning = _sentence(_BORROWED.sub("", doc.meaning))
        if not meaning:
            continue
        if not doc.group or (doc.group, doc.option) in chosen:
            package = chosen.get((doc.group, doc.option)) if doc.group else None
            key = f"{package}.{doc.local_key}" if package else doc.key
            depth = rank.get((doc.group, doc.option), 0) if doc.group else len(rank) + 1
            if key not in first or depth < first_rank[key]:  # the chosen option's over its bases' and config.yaml's
                first[key], first_rank[key] = meaning, depth
        if doc.group == "attack":
            fallback.setdefault(f"attack:{doc.local_key}", meaning)
        elif doc.group and doc.group.split("/")[0] not in _GLOBAL_GROUPS:
            fallback.setdefault(doc.key, meaning)
    return {**fallback, **first}


def _with_bases(chosen: dict[tuple[str, str], str | None]) -> dict[tuple[str, str], int]:
    """Add to `chosen` (in place) the options of the same group a chosen option builds on (eval=default's
    `defaults: [report]`), whose keys it composes; returns each option's depth (0: chosen itself)."""
    from adv_smooth.app.key_reference import CONF_DIR, UnreadableYaml, load_yaml

    depth = {option: 0 for option in chosen}
    todo = list(chosen)
    while todo:
        group, option = todo.pop(0)
        path = CONF_DIR / group / f"{option}.yaml"
        try:
            entries = load_yaml(path).get("defaults") or [] if path.is_file() else []
        except UnreadableYaml:
            continue
        for base in entries:
            if isinstance(base, str) and base != "_self_" and (group, base) not in chosen:
                chosen[(group, base)] = chosen[(group, option)]
                depth[(group, base)] = depth[(group, option)] + 1
                todo.append((group, base))
    return depth


def _meaning(known: dict[str, str], key: str) -> str:
    from adv_smooth.app.key_reference import HYDRA_KEYS

    parts = key.split(".")
    if key in known:
        return known[key]
    if parts[:2] == ["eval", "attacks"] and len(parts) > 3:  # an attack of any label
        return known.get("attack:" + ".".join(parts[3:]), "")
    if "attack" in parts[:-1]:  # a defense's training attack (defense.components.<name>.attack)
        at = len(parts) - 1 - parts[::-1].index("attack")
        return known.get("attack:" + ".".join(parts[at + 1 :]), "")
    return HYDRA_KEYS.get(parts[-1], "")


def described_yaml(cfg: DictConfig, choices: dict[str, str] | None = None) -> str:
    """`OmegaConf.to_yaml(cfg)` with `  # <meaning>` after each key line of a value or a list whose meaning is
    known (a mapping's keys carry their own)."""
    known = meanings(choices)
    lines, path = [], []  # path: the keys of the enclosing mappings, by depth
    for line in OmegaConf.to_yaml(cfg).splitlines():
        match = _KEY.match(line)
        if match is None:  # a list item or a continuation: no key of its own
            lines.append(line)
            continue
        depth = len(match["indent"]) // 2
        path = [*path[:depth], match["key"].strip("'\"")]
        key = ".".join(path)
        meaning = _meaning(known, key)
        if meaning and (match["rest"].strip() or OmegaConf.is_list(OmegaConf.select(cfg, key, default=None))):
            line = f"{line}  # {meaning}"
        lines.append(line)
    return "\n".join(lines)


def _resolve(*, _root_: DictConfig) -> str:
    """The resolver: the whole config without `hydra`, described; `$` doubled for Hydra's string.Template."""
    cfg = OmegaConf.masked_copy(_root_, [k for k in _root_ if k != "hydra"])
    choices = OmegaConf.select(_root_, "hydra.runtime.choices", default=None)
    plain = OmegaConf.to_container(choices) if choices is not None else {}
    return described_yaml(cfg, {str(k): str(v) for k, v in plain.items()}).replace("$", "$$")


def register() -> None:
    """Make `${described_config:}` resolvable (idempotent)."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, _resolve)
