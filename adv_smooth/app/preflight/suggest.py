"""Advice for a mistyped group or key, and refusal of `+key`s that nothing reads.

Hydra answers `defence=adv` or `trainer.max_epoch=3` with "To append to your config use +defence=adv".
Following that advice adds a key that no code reads: the run then fails later (a keyword the Trainer
refuses) or, worse, trains and silently ignores it (`defense=vanilla +defense.gamma=0.001`). Instead,
a key the config lacks gets the closest existing group or key (did you mean `defense`? `max_epochs`?)
and the keys of the node it was meant for; `+` is advised only where it adds an argument the object
actually takes. A `+key` is refused when nothing would read it:

* under an object's config (`_target_`), when its class's constructor has no parameter of that name
  (`+dataset.foo=1`, `+trainer.foo=1`): the object would refuse it only once built, after Hydra has
  written the run dir; a constructor that takes any keyword (`**kwargs` that end nowhere) is left to the object;
* in `defense` or `optim` (no `_target_`), when no interpolation reads it: their knobs reach the
  objects only through `${defense.<knob>}`; the options of the group that have the key are named;
* at the top level, when it is close to an existing group or key (`+defence=adv`): a typo.

A sweep is checked at its first job, as the rest of the start-up checks.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from adv_smooth.app.preflight.failures import constructor_keywords
from adv_smooth.utils.errors import UserError

Compose = Callable[[list[str]], DictConfig]  # overrides -> the composed config (raises when they do not compose)
MAX_KEYS = 30  # keys listed in one message
# Groups without `_target_` whose knobs reach the objects only through `${<group>.<knob>}` interpolations: a key
# added there that no interpolation names is read by nothing. (Other groups may be read by code, e.g. `hydra`.)
INTERPOLATED = ("defense", "optim")
_COULD_NOT_OVERRIDE = re.compile(r"Could not override '([^']+)'")
_APPEND_ADVICE = re.compile(r"\s*To append to your config use \S+?(\.\s|\.$|$)")
_TOKEN = re.compile(r"[A-Za-z_]\w*(?:\.\w+)*")
_INTERPOLATION = re.compile(r"\$\{([^{}]*)\}")


def closest(name: str, candidates: list[str]) -> str | None:
    """The candidate a typo most likely meant (`defence` -> `defense`), or None when none is close."""
    found = difflib.get_close_matches(name, candidates, n=1, cutoff=0.75)
    return found[0] if found else None


def without_append_advice(text: str) -> str:
    """Hydra's message minus its "To append to your config use +key=value" advice (which adds an unread key)."""
    return _APPEND_ADVICE.sub(" ", text).strip()


def groups_of(conf: str | Path) -> dict[str, list[str]]:
    """{top-level group: its options} read from the config directory."""
    root = Path(conf)
    return {p.name: sorted(f.stem for f in p.glob("*.yaml")) for p in sorted(root.iterdir()) if p.is_dir()}


def _listing(keys: list[str]) -> str:
    more = len(keys) - MAX_KEYS
    return ", ".join(keys[:MAX_KEYS]) + (f" and {more} more" if more > 0 else "")


def _keys(node: Any) -> list[str]:
    return sorted(str(k) for k in node if not str(k).startswith("_")) if isinstance(node, DictConfig) else []


def _parse(overrides: list[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_overrides([o for o in overrides if not o.startswith("-")])


def unknown_override(message: str, overrides: list[str], compose: Compose, conf: str | Path) -> str | None:
    """The one line for Hydra's "Could not override 'KEY'": did-you-mean and the keys allowed there.

    The config is composed once more without the offending override, to read the keys it does have. None
    when the message is about something else, or the rest does not compose either.
    """
    found = _COULD_NOT_OVERRIDE.search(message)
    if found is None:
        return None
    key = found.group(1)
    parsed = _parse(overrides)
    culprit = next((o for o in parsed if o.get_key_element().lstrip("+~") == key), None)
    if culprit is None:
        return None
    rest = [o.input_line for o in parsed if o is not culprit]
    try:
        cfg = compose(rest)
    except Exception:  # noqa: BLE001 - another override is wrong as well: Hydra's message stands
        return None
    value = culprit.input_line.split("=", 1)[1] if "=" in culprit.input_line else ""
    return _advice(key, value, cfg, groups_of(conf))


def _advice(key: str, value: str, cfg: DictConfig, groups: dict[str, list[str]]) -> str:
    parts = key.split(".")
    node: Any = cfg
    depth = 0
    while depth < len(parts) - 1 and isinstance(node, DictConfig) and parts[depth] in node:
        node = node[parts[depth]]
        depth += 1
    name, parent = parts[depth], ".".join(parts[:depth])
    rest = ".".join(parts[depth + 1 :])
    written = f"{key}={value}"
    if depth == 0:  # a group or top-level key that does not exist
        top = [k for k in _keys(cfg) if k != "hydra"]
        guess = closest(name, sorted({*groups, *top}))
        if guess is None:
            listed = f"groups: {_listing(sorted(groups))}; keys: {_listing(top)}"
            return f"{written}: no config group or key {name!r} ({listed})"
        meant = ".".join([guess, rest]) if rest else guess
        if guess in groups and not rest:
            where = f"{guess} options: {_listing(groups[guess])}"
        elif isinstance(cfg.get(guess), DictConfig):
            where = f"{guess} keys: {_listing(_keys(cfg.get(guess)))}"
        else:
            where = ""
        return f"{written}: no config group or key {name!r}; did you mean {meant}={value}?" + (
            f" ({where})" if where else ""
        )
    keys = _keys(node)
    guess = closest(name, keys)
    target = node.get("_target_") if isinstance(node, DictConfig) else None
    if guess is not None:
        meant = ".".join([parent, guess, *([rest] if rest else [])])
        return (
            f"{written}: {parent} has no key {name!r}; did you mean {meant}={value}? ({parent} keys: {_listing(keys)})"
        )
    takes = _keywords(str(target)) if target else None
    if takes is not None and name in takes and not rest:
        return (
            f"{written}: {parent} has no key {name!r} yet: add it with +{written} (an argument of {target}; "
            f"{parent} keys: {_listing(keys)})"
        )
    return f"{written}: {parent} has no key {name!r} ({parent} keys: {_listing(keys)})"


# -- `+key` that nothing reads ---------------------------------------------------------------------


def check_added_keys(overrides: list[str], cfg: DictConfig, conf: str | Path) -> None:
    """Refuse, as one `UserError`, the first `+key=value` of `overrides` that nothing in `cfg` reads."""
    groups = groups_of(conf)
    parsed = _parse(overrides)
    references = _references(cfg)
    for override in parsed:
        if not override.is_add() or override.key_or_group in groups or override.package is not None:
            continue
        key = override.key_or_group
        value = override.input_line.split("=", 1)[1] if "=" in override.input_line else ""
        why = _unread(key, cfg, references, groups, value)
        if why is None:
            continue
        raise UserError(f"+{key}={value}: {why}{_readers(key, value, conf, groups)}")


def _unread(
    key: str, cfg: DictConfig, references: set[str], groups: dict[str, list[str]], value: str = ""
) -> str | None:
    """Why nothing reads the added `key` in `cfg`, or None when something does (or may)."""
    parts = key.split(".")
    for depth in range(len(parts) - 1, 0, -1):  # the nearest object config above the key decides
        node = OmegaConf.select(cfg, ".".join(parts[:depth]), default=None)
        if isinstance(node, DictConfig) and "_target_" in node:
            name = parts[depth]
            takes = _keywords(str(node._target_))
            if name.startswith("_") or takes is None or name in takes:
                return None  # read, or a class that takes any keyword (or cannot be imported: building says so)
            where = ".".join(parts[:depth])
            guess = closest(name, takes)
            hint = f"; did you mean {where}.{guess}?" if guess else ""
            return f"{node._target_} does not read {name!r}{hint} (it reads {_listing(takes)})"
    if _referenced(key, references):
        return None
    group = parts[0]
    if group in INTERPOLATED and len(parts) > 1:
        choice = _choice(cfg, group)
        keys = [k for k in _keys(cfg.get(group)) if k != parts[1]]  # the group's own keys, not the added one
        guess = closest(parts[1], keys)
        hint = f"; did you mean {group}.{guess}?" if guess else ""
        return f"{group}={choice} does not read {key}{hint} ({group} keys: {_listing(keys)})" if choice else None
    if len(parts) == 1:
        guess = closest(key, sorted({*groups, *(k for k in _keys(cfg) if k not in ("hydra", key))}))
        return f"nothing reads a top-level {key!r}; did you mean {guess}={value} (no +)?" if guess else None
    return None


def _readers(key: str, value: str, conf: str | Path, groups: dict[str, list[str]]) -> str:
    """`; the defense options that have it: smooth, adv_smooth (e.g. defense=smooth defense.gamma=...)`, or ''.

    Read from the option files themselves (and the options of the same group they include), not composed:
    composing every option of a group would take seconds.
    """
    group, _, rest = key.partition(".")
    if group not in groups or not rest:
        return ""
    readers = [o for o in groups[group] if OmegaConf.select(_own(Path(conf), group, o), rest, default=None) is not None]
    if not readers:
        return ""
    simplest = min(readers, key=len)
    return f"; the {group} options that have it: {', '.join(readers)} (e.g. {group}={simplest} {key}={value})"


def _own(conf: Path, group: str, option: str, seen: frozenset[str] = frozenset()) -> DictConfig:
    """An option's own settings for its group: its file merged over the same-group options its defaults name."""
    path = conf / group / f"{option}.yaml"
    if option in seen or not path.is_file():
        return OmegaConf.create({})
    try:
        loaded = OmegaConf.load(path)
    except Exception:  # noqa: BLE001 - a file Hydra would refuse: it has nothing to offer
        return OmegaConf.create({})
    if not isinstance(loaded, DictConfig):
        return OmegaConf.create({})
    own = loaded.get(group) if "@package _global_" in path.read_text().split("\n", 1)[0] else loaded
    parts = [
        _own(conf, group, str(entry), seen | {option})
        for entry in loaded.get("defaults") or []
        if isinstance(entry, str) and entry != "_self_" and "/" not in entry
    ]
    plain = OmegaConf.to_container(own, resolve=False) if isinstance(own, DictConfig) else {}  # ${hydra:...} stays
    mine = OmegaConf.create({k: v for k, v in plain.items() if k != "defaults"})
    return OmegaConf.merge(*parts, mine) if parts else OmegaConf.create(mine)


def _choice(cfg: DictConfig, group: str) -> str | None:
    try:
        return str(cfg.hydra.runtime.choices[group])
    except Exception:  # noqa: BLE001 - composed without its hydra node
        node = cfg.get(group)
        return str(node.get("name")) if isinstance(node, DictConfig) and node.get("name") else group


def _references(cfg: DictConfig) -> set[str]:
    """Every dotted name inside an interpolation of `cfg` (`${defense.gamma}` -> `defense.gamma`)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str) and "${" in node:
            for inside in _INTERPOLATION.findall(node):
                found.update(_TOKEN.findall(inside))

    walk(OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, (DictConfig, ListConfig)) else cfg)
    return found


def _referenced(key: str, references: set[str]) -> bool:
    """An interpolation reads `key`, a part of it, or the whole node it sits in (`${eval.attacks}`)."""
    return any(r == key or r.startswith(key + ".") or key.startswith(r + ".") for r in references)


def _keywords(target: str) -> list[str] | None:
    """The keywords `target`'s constructor takes, None when unknown or when it takes any keyword.

    `**kwargs` passed on is followed up the class hierarchy, to the constructor that names its parameters.
    """
    try:
        from hydra.utils import get_object

        obj = get_object(target)
    except Exception:  # noqa: BLE001 - not importable: building it reports that
        return None
    found = constructor_keywords(obj)
    return found[0] if found is not None and found[1] else None
