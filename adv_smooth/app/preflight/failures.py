"""One line for a failed job: what went wrong, in the terms of the config key the user wrote.

Objects Hydra builds (defenses, callbacks, attacks, the Trainer) check their own settings, but Hydra
wraps whatever they raise in an `InstantiationException` ("Error in call to target ...", a `full_key`,
a hint about HYDRA_FULL_ERROR), nested once per level of recursive instantiation. `explain` unwraps
the chain down to the cause and names the key as the user wrote it: the path Hydra reports is
followed back through interpolations (`callbacks.robustness.attacks` -> `eval.attacks`). A keyword
the target does not take, and a string where a number belongs, are named with the key and its value.
Failures that are not the user's to fix (a bug) return None: the caller shows the traceback.
"""

from __future__ import annotations

import difflib
import errno
import importlib
import inspect
import re
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from adv_smooth.utils.errors import UserError

DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
MAX_OPTIONS = 16  # a Trainer takes some 50 keywords: one line still
_INTERPOLATION = re.compile(r"^\$\{(?:oc\.select:)?([\w.]+)(?:,[^}]*)?\}$")  # ${key}, ${oc.select:key,default}


def flat(text: object) -> str:
    return " ".join(str(text).split())


def explain(e: BaseException, cfg: DictConfig | None = None) -> str | None:
    """The one-line message for `e`, or None when it is not a failure the user can fix."""
    from hydra.errors import InstantiationException
    from lightning_fabric.utilities.exceptions import MisconfigurationException

    from adv_smooth.lightning import NonFiniteLossError
    from adv_smooth.lightning.checkpointing import CheckpointWriteError

    if isinstance(e, UserError):  # an object's own option names (`root=`) as the user's keys (`dataset.root=`)
        return keyed(flat(e), cfg)
    if isinstance(e, InstantiationException):
        return _instantiation(e, cfg)
    if isinstance(e, (NonFiniteLossError, CheckpointWriteError, MisconfigurationException)):
        return f"{type(e).__name__}: {flat(e)}"
    if isinstance(e, OSError) and e.errno in DISK_ERRNOS:
        return f"{type(e).__name__}: {flat(e)}"
    if out_of_memory(e):
        detail = flat(str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__)
        return (
            f"out of memory ({detail}): use a smaller dataset.batch_size, dataset.eval_batch_size or model, "
            "or a machine with more memory"
        )
    return None


def out_of_memory(e: BaseException) -> bool:
    """The machine (CPU or GPU) could not hold what the settings asked for: a batch or network too large for it."""
    text = str(e)
    return isinstance(e, MemoryError) or (
        isinstance(e, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower())
    )


def _instantiation(e: BaseException, cfg: DictConfig | None) -> str | None:
    """Follow the `InstantiationException` chain to its cause; None for a cause that is a bug."""
    from hydra.errors import InstantiationException
    from lightning_fabric.utilities.exceptions import MisconfigurationException

    innermost, cause = e, e.__cause__
    full_key = _full_key(e)
    while isinstance(cause, InstantiationException):
        innermost, cause = cause, cause.__cause__
        full_key = _nested_key(full_key, _full_key(innermost))
    text = str(innermost)
    found_target = re.search(r"target '([\w.]+)'", text)
    key = user_key(cfg, full_key) if full_key else None
    target = found_target.group(1) if found_target else None
    where = key or "the config"
    if isinstance(cause, UserError):
        # Options named without their place: `steps=-1` -> `eval.attacks.pgd.steps=-1`, and an option set by
        # interpolation under the name the user sets (`...adversarial.attack.labels` -> `defense.labels`).
        node = OmegaConf.select(cfg, full_key, default=None) if cfg is not None and full_key else None
        return keyed(flat(cause), node, full_key) if isinstance(node, DictConfig) else keyed(flat(cause), cfg)
    if text.startswith("Error locating target"):
        detail = f" ({type(cause).__name__}: {flat(cause)})" if cause is not None else ""
        return f"{where}._target_={target!r} cannot be imported{detail}"
    if cause is None:  # Hydra's own refusal: a bad `_args_`, a target that is not callable
        return f"{where}: {flat(text.split('full_key:')[0])}"
    if isinstance(cause, MisconfigurationException):
        return f"{where}: {flat(cause)}"
    if isinstance(cause, TypeError) and (unknown := re.search(r"unexpected keyword argument '(\w+)'", str(cause))):
        return unknown_option(cfg, key, target, unknown.group(1), cause)
    if isinstance(cause, (TypeError, ValueError)):
        culprit = _culprit(cfg, key, str(cause))
        if culprit is not None:
            name, value = culprit
            return f"{name}={value!r} is invalid: expected a number ({type(cause).__name__}: {flat(cause)})"
        return f"{where}: {target or 'the object'} refused its settings ({type(cause).__name__}: {flat(cause)})"
    return None


def user_key(cfg: DictConfig | None, key: str) -> str:
    """`key` with any prefix that is an interpolation `${other}` replaced by `other`, as the user sets it."""
    if cfg is None:
        return key
    parts = key.split(".")
    node: Any = cfg
    for i, part in enumerate(parts):
        if not isinstance(node, DictConfig) or part not in node:
            return key
        if OmegaConf.is_interpolation(node, part):
            raw = node._get_node(part)._value()  # noqa: SLF001 - the unresolved `${...}` string
            found = _INTERPOLATION.match(str(raw))
            if found is None:
                return key
            return user_key(cfg, ".".join([found.group(1), *parts[i + 1 :]]))
        node = node[part]
    return key


def _full_key(e: BaseException) -> str | None:
    found = re.search(r"full_key: (\S+)", str(e).splitlines()[-1] if str(e) else "")
    return found.group(1) if found else None


def _nested_key(outer: str | None, inner: str | None) -> str | None:
    """The key of a nested failure. Recursive instantiation names it from the config's root; an object that builds
    another itself (a defense its attack, `defense.components.adversarial` + `attack`) calls instantiate on a config
    of its own, whose keys start from that config."""
    if inner is None or outer is None:
        return inner or outer
    return inner if inner == outer or inner.startswith(outer + ".") else f"{outer}.{inner}"


# An option a refusal names: `name=` (or `name.entry=`) at the start, after a space or an opening bracket, or the
# name (or `name.entry`) in backquotes; a library object names its own options this way, never the user's keys.
_NAMED_OPTION = re.compile(r"(?<![^\s(\[,;/])(\w+)((?:\.\w+)*)(?==)|`(\w+)((?:\.\w+)*)`")


def keyed(message: str, cfg: Any, key: str = "") -> str:
    """`message`, an object's refusal naming its own options (`n0=5 is invalid: an integer in [1, n=4]`, `set
    `test_subset` too`), with each option written as the key the user sets (`eval.certify.n0=5 ... [1,
    eval.certify.n=4]`, `set eval.test_subset too`): so the key strings live in the configs, not in the library.

    `cfg` holds the options (a composed config, or a plain mapping) and `key` is its place (`eval`; "" for a whole
    config). An option is `key.name` when `cfg` has it, else the one entry of that name below (`eval.certify.n0`,
    `defense.components.gaussian.sigma`), followed back through an interpolation to the key the user sets
    (`defense.noise_sigma`); of several, the one holding the value the message shows. An option found nowhere, or
    in several places with that value, is left as the object wrote it.
    """
    if cfg is None:
        return message

    def place(found: re.Match[str]) -> str:
        name, rest = found.group(1) or found.group(3), found.group(2) or found.group(4) or ""
        paths = _places(cfg, key, name)
        if len(paths) > 1:  # several entries of that name: the one whose value the message shows
            shown = message[found.end() + 1 :]
            paths = [path for path in paths if any(shown.startswith(text) for text in _shown(cfg, key, path))]
        if len(paths) != 1:
            return found.group(0)
        return paths[0] + rest

    return _NAMED_OPTION.sub(place, message)


def _places(cfg: Any, key: str, name: str) -> list[str]:
    """The user's keys of the entries named `name`: `key.name` itself, else every entry of that name below `key`."""
    root = cfg._get_root() if isinstance(cfg, DictConfig) else None  # noqa: SLF001 - where interpolations point
    prefix = f"{key}." if key else ""
    entries = _entries(cfg, key)
    own = [path for path, _ in entries if path == f"{prefix}{name}"] if key else []  # a whole config: by value
    found = own or [path for path, _ in entries if path.rsplit(".", 1)[-1] == name]
    if isinstance(cfg, DictConfig):
        full = cfg._get_full_key(None)  # noqa: SLF001 - the node's place in its config
        base = f"{full}." if full else ""
        found = [user_key(root, base + path[len(prefix) :]) for path in found]
    return list(dict.fromkeys(found))


def _entries(node: Any, key: str) -> list[tuple[str, Any]]:
    """(dotted path, value) of every entry below `node`, mappings included, and of each element of a list under the
    list's path (Hydra's own node and `_target_`-style keys skipped; an entry that cannot be resolved is no one's
    option)."""
    out: list[tuple[str, Any]] = []
    if isinstance(node, (ListConfig, list)):
        for value in node:
            out += [(key, value), *_entries(value, key)]
    if not isinstance(node, (DictConfig, dict)):
        return out
    for name in node:
        if str(name).startswith("_") or (not key and name == "hydra"):
            continue
        try:
            value = node[name]
        except Exception:  # noqa: BLE001 - an interpolation only Hydra's job can resolve
            continue
        path = f"{key}.{name}" if key else str(name)
        out += [(path, value), *_entries(value, path)]
    return out


def _shown(cfg: Any, key: str, path: str) -> list[str]:
    """How a message may show the value at the user's key `path`: repr and str of it as plain Python."""
    root = cfg._get_root() if isinstance(cfg, DictConfig) else None  # noqa: SLF001
    if root is not None:
        value = OmegaConf.select(root, path, default=None)
    else:
        value = cfg
        for part in path[len(key) + 1 if key else 0 :].split("."):
            value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=True)
    return [repr(value), str(value)]


def unknown_option(cfg: DictConfig | None, key: str | None, target: str | None, name: str, cause: Exception) -> str:
    """`<key>.<name> is not an option of <target> (options: ...)`: where the stray key sits, what is allowed."""
    place = key
    if cfg is not None and key is not None:
        for path, _ in _entries(OmegaConf.select(cfg, key), key):
            if path.rsplit(".", 1)[-1] == name:
                place = user_key(cfg, path.rsplit(".", 1)[0])
                break
    options = _options(target, str(cause))
    more = len(options) - MAX_OPTIONS
    shown = ", ".join(options[:MAX_OPTIONS]) + (f" and {more} more" if more > 0 else "")
    allowed = f" (options: {shown})" if options else ""
    owner = f"{place}." if place else ""
    guess = difflib.get_close_matches(name, options, n=1, cutoff=0.75)
    meant = f"; did you mean {owner}{guess[0]}?" if guess else ""
    return f"{owner}{name} is not a known option{meant}{allowed}: {type(cause).__name__}: {flat(cause)}"


def _options(target: str | None, message: str) -> list[str]:
    """The keyword parameters of the class that refused a keyword (following `**kwargs` up the MRO)."""
    cls = _class(target)
    named = re.match(r"(\w+)\.__init__\(\)", message)
    if cls is not None and named and named.group(1) != cls.__name__:
        cls = next((c for c in cls.__mro__ if c.__name__ == named.group(1)), None)
    found = constructor_keywords(cls) if cls is not None else None
    return found[0] if found is not None else []


def constructor_keywords(obj: Any) -> tuple[list[str], bool] | None:
    """(the keyword parameters `obj` (a class or a function) takes, whether that list is complete), None when a
    signature cannot be read. A `**kwargs` passed on is followed up a class's hierarchy; the list is incomplete
    when the chain ends in a `**kwargs` that takes any keyword."""
    if isinstance(obj, type):
        inits = [c.__dict__["__init__"] for c in obj.__mro__ if "__init__" in c.__dict__]
    elif callable(obj):
        inits = [obj]
    else:
        return None
    names: list[str] = []
    for init in inits:
        try:
            params = list(inspect.signature(init).parameters.values())
        except (TypeError, ValueError):
            return None
        if isinstance(obj, type):
            params = params[1:]
        names += [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in names]
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return names, True
    return names, False


def _class(target: str | None) -> type | None:
    if not target or "." not in target:
        return None
    module, _, name = target.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    return obj if isinstance(obj, type) else None


def _culprit(cfg: DictConfig | None, key: str | None, message: str) -> tuple[str, Any] | None:
    """The string setting under `key` that a failed number conversion or comparison most likely came from."""
    if cfg is None or key is None:
        return None
    node = OmegaConf.select(cfg, key, default=None)
    strings = [(user_key(cfg, path), value) for path, value in _entries(node, key) if isinstance(value, str)]
    quoted = re.search(r"(?:float|int\(\) with base \d+): '(.*)'$", message)
    if quoted:  # `float('abc')`, or `float` over the characters of 'abc'
        fragment = quoted.group(1)
        matches = [kv for kv in strings if kv[1] == fragment] or [kv for kv in strings if kv[1].startswith(fragment)]
        return _owner(cfg, matches[0]) if matches else None
    if "'str'" in message and len(strings) == 1:  # `'>' not supported between instances of 'str' and 'int'`
        return _owner(cfg, strings[0])
    return None


def _owner(cfg: DictConfig, found: tuple[str, Any]) -> tuple[str, Any]:
    """A list element is reported as its whole list, as the user wrote it (`eval.snr_levels=['abc', 40]`)."""
    key, value = found
    whole = OmegaConf.select(cfg, key, default=None)
    return key, OmegaConf.to_container(whole) if isinstance(whole, ListConfig) else value
