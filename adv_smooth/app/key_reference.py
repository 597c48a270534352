"""The config reference, generated from `conf/`: every group, option file and key, with its meaning.

`describe_keys()` walks every YAML under `conf/` and returns one `KeyDoc` per key (nested keys included, plus each
file's defaults list): its dotted path as the composed config spells it, type, default, allowed values where they
are knowable and a one-line meaning. The meaning comes, in this order, from the YAML comment on the key's line or
the comment block above it (a block above a run of consecutive keys covers the run), from a `key: ...` entry in
the file's comments, or, for a key of a `_target_` node of this package (and for the key interpolated into it),
from the constructor's docstring (its `Args:` section); types and defaults of `_target_` parameters come from
the constructor's signature (`inspect`). Choices of a group are its YAML files.

    python -m adv_smooth.app.key_reference > docs/reference/config.md

regenerates the reference page (a test checks the committed page equals this output); `key_meaning(path)` is the
one-line meaning `--help` can print for a key.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
if not CONF_DIR.is_dir():  # installed: conf/ ships inside the package as adv_smooth/conf
    CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

# Where a group's options land when they are not composed at their own package (`attack` entries sit under a
# label of `eval.attacks`, or as the training attack of `defense=adv`).
USAGE_PREFIX = {"attack": "eval.attacks.<label>"}
UNREADABLE = "(unreadable file)"
PRIMARY = {"config": "the training entry point, `python -m adv_smooth`", "evaluate": "`python -m adv_smooth.evaluate`"}

_KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_][\w.@/-]*|'[^']*'|\"[^\"]*\")\s*:(?:\s+(?P<value>.*))?\s*$")
_ENTRY = re.compile(r"^(?P<key>[A-Za-z_][\w.]*)(?:\s*\([^)]*\))?:\s+(?P<text>\S.*)$")


@dataclasses.dataclass(frozen=True)
class KeyDoc:
    """One key of one option file."""

    file: str  # relative to conf/, e.g. "defense/smooth.yaml"
    group: str  # "" for the primary configs, else the group path, e.g. "optim/schedule"
    option: str  # the file's stem
    key: str  # the path in the composed config, e.g. "defense.gamma"
    local_key: str  # the path inside the file, e.g. "gamma"
    type: str
    default: str
    allowed: str
    meaning: str


@dataclasses.dataclass(frozen=True)
class OptionDoc:
    """One option file: its group, name, package prefix and the first sentence of its header comment."""

    file: str
    group: str
    option: str
    prefix: str
    summary: str


# ----------------------------------------------------------------------------------------------- YAML comments
@dataclasses.dataclass
class _Comments:
    header: str = ""
    package: str | None = None
    keys: dict[str, str] = dataclasses.field(default_factory=dict)  # local dotted path -> comment
    entries: dict[str, str] = dataclasses.field(default_factory=dict)  # `key: text` lines in comment blocks


def _join(lines: list[str]) -> str:
    return " ".join(line.strip() for line in lines if line.strip()).strip()


def _entries(block: list[str]) -> dict[str, str]:
    """`key: text` (or `key (note): text`) lines of a comment block, with their indented continuation lines."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in block:
        text = raw.rstrip()
        match = _ENTRY.match(text.strip())
        if match and not text.startswith("  "):
            current = found.setdefault(match["key"], [])
            current.append(match["text"])
        elif current is not None and (text.startswith("  ") or text[:1].islower()):
            current.append(text)
        else:
            current = None
    return {key: _join(lines) for key, lines in found.items()}


def _scan(text: str) -> _Comments:
    """Comments of a YAML file, by the dotted local path of the key they describe (a line-based reading)."""
    out = _Comments()
    lines = text.splitlines()
    stack: list[tuple[int, str]] = []
    block: list[str] = []
    active: tuple[int, str] | None = None  # (indent, comment) of a block covering a run of keys
    in_header = True
    header: list[str] = []
    skip_deeper: int | None = None  # inside a block scalar (| or >)
    for raw in lines:
        stripped = raw.strip()
        indent = len(raw) - len(raw.lstrip())
        if skip_deeper is not None:
            if stripped and indent <= skip_deeper:
                skip_deeper = None
            else:
                continue
        if not stripped:
            if in_header and header:
                in_header = False
            block, active = [], None
            continue
        if stripped.startswith("#"):
            body = stripped[1:]
            body = body[1:] if body.startswith(" ") else body
            if body.startswith("@package"):
                out.package = body.split()[1]
                continue
            (header if in_header else block).append(body)
            continue
        in_header = False
        if stripped.startswith("-"):
            block = []
            continue
        match = _KEY_LINE.match(raw.split(" #")[0] if " #" in raw else raw)
        if not match:
            block = []
            continue
        key = match["key"].strip("'\"")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _, k in stack] + [key])
        inline = raw.split(" # ", 1)[1].strip() if " # " in raw else ""
        value = (match["value"] or "").split(" # ")[0].strip()
        above = _join(block)
        if above:
            active = (indent, above)
        elif active is not None and active[0] != indent:
            active = None
        block_text = above or (active[1] if active else "")
        if inline and block_text:  # the key's own comment first (--help's one line), then the block it sits under
            comment = f"{inline}{'' if inline.endswith('.') else '.'} {block_text}"
        else:
            comment = inline or block_text
        if comment:
            out.keys[path] = comment
            if value.startswith("{"):  # a flow mapping's keys share its line's comment
                try:
                    inner = yaml.safe_load(value)
                except yaml.YAMLError:
                    inner = None
                for sub in inner if isinstance(inner, dict) else ():
                    out.keys.setdefault(f"{path}.{sub}", comment)
        for entry_key, entry_text in _entries(block).items():
            out.entries.setdefault(entry_key, entry_text)
        block = []
        stack.append((indent, key))
        if value[:1] in ("|", ">"):
            skip_deeper = indent
    out.entries = {**_entries(header), **out.entries}
    out.header = _join(header)
    return out


# ------------------------------------------------------------------------------------------ constructors' docs
def _docstring_args(doc: str | None) -> dict[str, str]:
    """The `Args:` section of a Google-style docstring: parameter -> its text joined on one line."""
    if not doc:
        return {}
    lines = inspect.cleandoc(doc).splitlines()
    found: dict[str, list[str]] = {}
    in_args, current, base = False, None, None
    for line in lines:
        if re.match(r"^Args\b.*:\s*(\S.*)?$", line.strip()) and not line.startswith(" "):
            in_args, current, base = True, None, None
            continue
        if not in_args:
            continue
        if line and not line.startswith(" "):
            break
        indent = len(line) - len(line.lstrip())
        match = re.match(r"^\s+(\*{0,2}\w+)(?:\s*\([^)]*\))?:\s*(.*)$", line)
        if match and (base is None or indent <= base):
            base = indent
            current = found.setdefault(match[1].lstrip("*"), [])
            current.append(match[2])
        elif current is not None and line.strip():
            current.append(line)
    return {name: _join(text) for name, text in found.items()}


def _prose_params(doc: str | None) -> dict[str, str]:
    """Paragraphs of a docstring that open with a parameter in backticks (`name` or `name=value`): name -> text."""
    if not doc:
        return {}
    found: dict[str, str] = {}
    for paragraph in re.split(r"\n\s*\n", inspect.cleandoc(doc)):
        match = re.match(r"^`(\w+)(?:=[^`]*)?`", paragraph.strip())
        if match:
            found.setdefault(match[1], _join(paragraph.splitlines()))
    return found


# Third-party packages (hard dependencies) whose classes a `_target_` may name: a key of such a node takes the first
# sentence of that class's docstring (its `Args:` section, as installed), so the page follows the installed version.
THIRD_PARTY = ("pytorch_lightning", "lightning", "torch", "torchvision")
# Hydra's own keys of an instantiated node.
HYDRA_KEYS = {
    "_target_": "the class or function Hydra builds from this node",
    "_partial_": "true: Hydra builds a partial (the caller supplies the remaining arguments, e.g. the parameters)",
    "_convert_": "how Hydra passes the node's containers to the constructor: none | partial | object | all (plain)",
    "_recursive_": "false: Hydra leaves the nested nodes as configs for the class to build",
    "_args_": "positional arguments Hydra passes to the target",
}


def _rst_to_markdown(text: str) -> str:
    """A Sphinx docstring's markup as plain Markdown code spans: ``x`` and :class:`~a.B` become `x` and `B`."""
    text = re.sub(r":\w+:`~([^`]*)`", lambda m: f"`{m[1].rsplit('.', 1)[-1]}`", text)
    text = re.sub(r":\w+:`([^`]*)`", r"`\1`", text)
    return text.replace("``", "`")


def _third_party_docs(owner: Any) -> dict[str, str]:
    """A third-party class's (or function's) parameters -> the first sentence of their docstring text."""
    found = _docstring_args(owner.__doc__)
    if inspect.isclass(owner):
        found = {**found, **_docstring_args(owner.__init__.__doc__)}
    # the page has its own default column: "(default: 0)" and "Default: ``None``." are left out
    return {
        name: first_sentence(re.sub(r"\s*\(default:[^)]*\)", "", _rst_to_markdown(text), flags=re.IGNORECASE))
        for name, text in found.items()
    }


@cache
def _target_params(target: str) -> dict[str, tuple[str, str, str]]:
    """A `_target_`'s parameters -> (annotation, default, docstring text). For this package's classes all three,
    walking up the classes while a constructor passes `**kwargs` on; for a third-party target of `THIRD_PARTY`
    (or a third-party base class) only the docstring's first sentence; {} for other targets."""
    if target.split(".")[0] not in ("adv_smooth", *THIRD_PARTY):
        return {}
    module_name, _, name = target.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError):  # a moved class: the page's drift test says so
        return {}
    params: dict[str, tuple[str, str, str]] = {}
    classes = [c for c in inspect.getmro(obj) if c is not object] if inspect.isclass(obj) else [obj]
    closed = False  # a constructor without **kwargs: its bases only fill in the texts its docstring leaves out
    for owner in classes:
        if closed and all(doc for _, _, doc in params.values()):
            break
        try:
            signature = inspect.signature(owner.__init__ if inspect.isclass(owner) else owner)
        except (TypeError, ValueError):
            continue
        mine = owner.__module__.startswith("adv_smooth")
        if not mine:
            docs = _third_party_docs(owner)
        elif inspect.isclass(owner):
            docs = {**_prose_params(owner.__doc__), **_field_comments(owner), **_docstring_args(owner.__doc__)}
        else:
            docs = _docstring_args(owner.__doc__)
        for param in signature.parameters.values():
            if param.name in ("self", "args", "kwargs", "common") or param.kind in (
                param.VAR_KEYWORD,
                param.VAR_POSITIONAL,
            ):
                continue
            if param.name in params:  # a subclass's parameter: its docstring may leave the text to the base
                annotation, default, doc = params[param.name]
                params[param.name] = (annotation, default, doc or docs.get(param.name, ""))
                continue
            if closed:
                continue
            annotation = default = ""
            if mine:
                annotation = "" if param.annotation is param.empty else str(param.annotation).replace("typing.", "")
                default = "" if param.default is param.empty else _format(param.default)
            params[param.name] = (annotation, default, docs.get(param.name, ""))
        if not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
            closed = True
    return params


def _field_comments(owner: Any) -> dict[str, str]:
    """`name: type = default  # comment` lines of a dataclass body: field -> comment."""
    try:
        source = inspect.getsource(owner)
    except (OSError, TypeError):
        return {}
    found = re.findall(r"^\s{4}(\w+)\s*:[^=\n]*=[^#\n]*#\s*(.+)$", source, flags=re.MULTILINE)
    return {name: text.strip() for name, text in found}


# ---------------------------------------------------------------------------------------------------- values
def _format(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_format(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_format(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str) and "\n" in value:
        return value.splitlines()[0] + " …"
    return str(value)


def _type_of(value: Any) -> str:
    if isinstance(value, str) and "${" in value:
        return "interpolation"
    return {
        bool: "bool",
        int: "int",
        float: "float",
        str: "str",
        list: "list",
        dict: "mapping",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _without_parentheses(text: str) -> str:
    out, depth = [], 0
    for char in text:
        depth += char == "("
        if depth == 0:
            out.append(char)
        depth -= char == ")" and depth > 0
    return "".join(out)


def _allowed(value: Any, annotation: str, meaning: str) -> str:
    """true/false for a boolean; else the values a meaning opens with, `a | b | c` or `"a" or "b"`."""
    if isinstance(value, bool) or annotation == "bool":
        return "true, false"
    flat = _without_parentheses(meaning)
    parts = re.split(r"\s*\|\s*" if "|" in flat else r"\s+or\s+", flat)
    words: list[str] = []
    for index, part in enumerate(parts):
        match = re.match(r'^"?([\w./+-]+)"?(.*)$', part.strip())
        if not match:
            break
        words.append(match[1])
        if match[2].strip():
            if index == 0:
                return ""
            break
    return ", ".join(dict.fromkeys(words)) if len(words) >= 2 else ""


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, Any, dict | None]]:
    """(local path, value, the mapping holding it) for every key of a YAML mapping, nested first-to-last."""
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        child = f"{path}.{key}" if path else str(key)
        yield child, value, node
        if isinstance(value, dict):
            yield from _walk(value, child)


def _defaults_text(entries: list) -> str:
    parts = []
    for entry in entries:
        parts.append(
            ", ".join(f"{k}: {_format(v)}" for k, v in entry.items()) if isinstance(entry, dict) else str(entry)
        )
    return "; ".join(parts)


def _mounts(entries: list, group: str, prefix: str) -> list[tuple[str, str]]:
    """(composed node, option file) of each `group@package: option` entry of a defaults list."""
    out = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        for name, option in entry.items():
            where, at, package = str(name).removeprefix("override ").partition("@")
            if not at or not isinstance(option, str):
                continue
            source = where[1:] if where.startswith("/") else "/".join(p for p in (group, where) if p)
            out.append((f"{prefix}.{package}" if prefix else package, f"{source}/{option}.yaml"))
    return out


def _prefix(group: str, package: str | None) -> str:
    if package == "_global_" or not group:
        return ""
    if package:
        return package
    return USAGE_PREFIX.get(group, group.replace("/", "."))


_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.", "al.")


def first_sentence(text: str) -> str:
    """`text` up to its first full stop followed by a space (or the end), outside brackets, quotes and code spans
    and not that of an abbreviation: "Residual blocks per stage, e.g. [2, 2] (ResNet-18). More." -> the first."""
    text = " ".join(text.split())
    depth, code = 0, False
    for index, char in enumerate(text):
        if char == "`":
            code = not code
        elif not code and char in "([{":
            depth += 1
        elif not code and char in ")]}" and depth:
            depth -= 1
        elif (
            char == "."
            and not code
            and depth == 0
            and text[index + 1 : index + 2] in (" ", "")
            and not text[: index + 1].endswith(_ABBREVIATIONS)
        ):
            return text[: index + 1]
    return text


# ------------------------------------------------------------------------------------------------- the walk
class UnreadableYaml(ValueError):
    """A conf/ file that is not valid YAML (Hydra fails on it too)."""


def load_yaml(path: Path) -> dict:
    """A conf/ file as plain containers, interpolations kept as written (OmegaConf's YAML loader)."""
    try:
        data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except yaml.YAMLError as error:  # Hydra cannot load it either: the page says so (UnreadableYaml)
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise UnreadableYaml(f"{getattr(error, 'context', None) or 'YAML'}: {problem}{where}") from error
    return data if isinstance(data, dict) else {}


def _files(conf_dir: Path) -> list[Path]:
    return sorted(conf_dir.rglob("*.yaml"), key=lambda p: (len(p.relative_to(conf_dir).parts) > 1, str(p)))


def describe_options(conf_dir: Path | None = None) -> list[OptionDoc]:
    """Every option file under conf/, primary configs first, then by group."""
    conf_dir = conf_dir or CONF_DIR
    out = []
    for path in _files(conf_dir):
        rel = path.relative_to(conf_dir)
        group = "/".join(rel.parts[:-1])
        comments = _scan(path.read_text())
        out.append(OptionDoc(str(rel), group, path.stem, _prefix(group, comments.package), comments.header))
    return out


def describe_keys(conf_dir: Path | None = None) -> list[KeyDoc]:
    """One `KeyDoc` per key of every YAML file under conf/ (the defaults lists included, as key `defaults`)."""
    conf_dir = conf_dir or CONF_DIR
    docs: list[KeyDoc] = []
    targets: dict[str, str] = {}  # composed node -> the first `_target_` a file gives it (trainer -> Trainer)
    mounts: list[tuple[str, str]] = []  # (composed node, option file) of `group@package: option` defaults
    for path in _files(conf_dir):
        rel = path.relative_to(conf_dir)
        group = "/".join(rel.parts[:-1])
        text = path.read_text()
        comments = _scan(text)
        try:
            data = load_yaml(path)
        except UnreadableYaml as error:
            meaning = f"NOT VALID YAML, Hydra cannot load this option: {error}"
            docs.append(KeyDoc(str(rel), group, path.stem, UNREADABLE, "", "", "", "", meaning))
            continue
        prefix = _prefix(group, comments.package)
        # meanings of keys interpolated into a _target_ parameter: ${defense.gamma} -> LaplacianSmoothness's gamma
        via_target: dict[str, tuple[str, str, str]] = {}
        for _, _value, parent in _walk(data):
            if isinstance(parent, dict) and isinstance(parent.get("_target_"), str):
                params = _target_params(parent["_target_"])
                for name, sub in parent.items():
                    if isinstance(sub, str) and re.fullmatch(r"\$\{[\w.]+\}", sub) and name in params:
                        via_target.setdefault(sub[2:-1], params[name])
        for local, value, parent in _walk(data):
            full = f"{prefix}.{local}" if prefix else local
            leaf = local.rsplit(".", 1)[-1]
            annotation, sig_default, doc = "", "", ""
            if isinstance(parent, dict) and isinstance(parent.get("_target_"), str):
                annotation, sig_default, doc = _target_params(parent["_target_"]).get(leaf, ("", "", ""))
            if not doc and full in via_target:
                annotation, sig_default, doc = via_target[full]
            if leaf == "_target_" and isinstance(value, str):
                targets.setdefault(full.rpartition(".")[0], value)
            if local == "defaults" and isinstance(value, list):
                mounts += _mounts(value, group, prefix)
                docs.append(
                    KeyDoc(
                        str(rel),
                        group,
                        path.stem,
                        "defaults",
                        local,
                        "defaults list",
                        _defaults_text(value),
                        "",
                        "the configs this file composes (Hydra's defaults list)",
                    )
                )
                continue
            if leaf in HYDRA_KEYS:
                meaning = comments.keys.get(local) or HYDRA_KEYS[leaf]
            else:
                meaning = comments.keys.get(local) or comments.entries.get(local) or comments.entries.get(leaf) or doc
            if not meaning and isinstance(value, str) and re.fullmatch(r"\$\{[\w.]+\}", value):
                meaning = f"follows `{value[2:-1]}`"
            kind = annotation or _type_of(value)
            if isinstance(value, str) and "${" in value and annotation:
                kind = f"{annotation} (interpolated)"
            default = "(mapping)" if isinstance(value, dict) else _format(value)
            if sig_default and sig_default != default and not isinstance(value, dict) and "${" not in str(value):
                default = f"{default} (constructor: {sig_default})"
            docs.append(
                KeyDoc(
                    str(rel),
                    group,
                    path.stem,
                    full,
                    local,
                    kind,
                    default,
                    _allowed(value, annotation, meaning),
                    meaning or "",
                )
            )
    # a key left without a meaning borrows the one the same composed key has in another file (a preset's override)
    known: dict[str, tuple[str, str]] = {}
    for doc in docs:
        if doc.meaning and not doc.meaning.startswith("follows `"):
            known.setdefault(doc.key, (doc.meaning, doc.file))
    # else the meaning of the key in the option file composed there (eval.attacks.apgd_ce.norm: conf/attack/apgd.yaml),
    # else that of the parameter of the `_target_` the key's node has in another file (debug's trainer.limit_*)
    by_local = {(doc.file, doc.local_key): doc.meaning for doc in docs if doc.meaning}
    resolved = []
    for doc in docs:
        meaning = "" if doc.meaning.startswith("follows `") else doc.meaning
        if not meaning and doc.key in known:
            meaning = f"{known[doc.key][0]} (from conf/{known[doc.key][1]})"
        for node, file in mounts if not meaning else ():
            if doc.key.startswith(node + ".") and (file, doc.key[len(node) + 1 :]) in by_local:
                meaning = by_local[(file, doc.key[len(node) + 1 :])]
                break
        node, _, leaf = doc.key.rpartition(".")
        if not meaning and node in targets and leaf not in HYDRA_KEYS:
            meaning = _target_params(targets[node]).get(leaf, ("", "", ""))[2]
        resolved.append(meaning or doc.meaning)
    # a key that others interpolate (defense.norm, fed to the training attack's norm) means what it feeds
    fed: dict[str, str] = {}
    for doc, meaning in zip(docs, resolved):
        match = re.fullmatch(r"\$\{([\w.]+)\}", doc.default)
        if match and meaning and not meaning.startswith("follows `"):
            fed.setdefault(match[1], meaning)
    out = []
    for doc, meaning in zip(docs, resolved):
        meaning = meaning or fed.get(doc.key, "")
        if not meaning and doc.default == "(mapping)":
            meaning = "a mapping: its keys follow"
        allowed = doc.allowed or _allowed(None, "", meaning)
        out.append(dataclasses.replace(doc, meaning=meaning or "—", allowed=allowed))
    return out


def key_meaning(path: str) -> str:
    """The one-line meaning of a composed key, e.g. `key_meaning("defense.gamma")` ("" when none is known)."""
    for doc in describe_keys():
        if doc.key == path and doc.meaning != "—":
            return first_sentence(doc.meaning)
    return ""


# ---------------------------------------------------------------------------------------------------- the page
def _escape_prose(text: str) -> str:
    for char, escaped in (("<", "&lt;"), (">", "&gt;"), ("[", "\\["), ("]", "\\]"), ("*", "\\*"), ("_", "\\_")):
        text = text.replace(char, escaped)
    return text


def _cell(text: str, code: bool = False) -> str:
    """A table cell: pipes escaped; Markdown and HTML characters escaped outside `code spans`."""
    text = text.replace("\n", " ")
    if not text:
        return ""
    if code and "|" not in text and "`" not in text:
        return f"`{text}`"
    if code:
        return text.replace("|", "\\|")
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unmatched backtick: no code span at all
        parts = [text.replace("`", "'")]
    cell = "`".join(part if index % 2 else _escape_prose(part) for index, part in enumerate(parts))
    return cell.replace("|", "\\|")


def render_markdown(conf_dir: Path | None = None) -> str:
    """The reference page, docs/reference/config.md."""
    keys = describe_keys(conf_dir)
    options = describe_options(conf_dir)
    by_file: dict[str, list[KeyDoc]] = {}
    for doc in keys:
        by_file.setdefault(doc.file, []).append(doc)
    groups: dict[str, list[OptionDoc]] = {}
    for option in options:
        groups.setdefault(option.group, []).append(option)
    out = [
        "---",
        "hide:",
        "  - toc  # the key tables need the page's whole width",
        "---",
        "",
        "# Config keys",
        "",
        "<!-- GENERATED by `python -m adv_smooth.app.key_reference > docs/reference/config.md`: do not edit by hand;",
        "     tests/docs/test_config_reference.py fails when this page and conf/ disagree. -->",
        "",
        "Every group, option and key under `conf/`, generated from the YAML files, their comments and the",
        "signatures and docstrings of the classes they build (`adv_smooth/app/key_reference.py`). Regenerate with:",
        "",
        '```bash title="illustrative"',
        "python -m adv_smooth.app.key_reference > docs/reference/config.md",
        "```",
        "",
        "A key is set on the command line as `key=value` (`+key=value` to add one the file lacks, `~key` to drop it);",
        "a group's option is chosen with `group=option`. *Type* is the constructor's annotation where the key feeds",
        "a class of this package, else the YAML value's type; *allowed* lists the values the comment or docstring",
        "names, or a group's options. `—`: no comment or docstring describes the key yet.",
        "",
        "## Groups",
        "",
        "| group | options | sets keys under |",
        "|---|---|---|",
    ]
    for group, opts in groups.items():
        if not group:
            continue
        prefixes = sorted({o.prefix or "(top level)" for o in opts})
        names = ", ".join(f"`{o.option}`" for o in opts)
        out.append(f"| `{group}` | {names} | {_cell(', '.join(prefixes))} |")
    out.append("")
    for group, opts in groups.items():
        if group:
            out += [f"## Group `{group}`", ""]
            out += [f"Choose with `{group}=<option>`; options: {', '.join(o.option for o in opts)}."]
            if group in USAGE_PREFIX:
                out += [
                    "",
                    f"Its options are composed under `{USAGE_PREFIX[group]}` (e.g. "
                    f"`+{group}@eval.attacks.apgd_l2=apgd`), or as a defense's training attack.",
                ]
            out.append("")
        for option in opts:
            title = f"`{option.file}`" if not group else f"`{group}={option.option}`"
            out += [f"{'##' if not group else '###'} {title}", ""]
            if not group:
                out += [f"The primary config of {PRIMARY.get(option.option, option.option)}.", ""]
            if option.summary:
                out += [_cell(option.summary), ""]
            rows = by_file.get(option.file, [])
            if not rows:
                out += ["(no keys)", ""]
                continue
            out += ["| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]
            for row in rows:
                out.append(
                    f"| {_cell(row.key, True)} | {_cell(row.type)} | {_cell(row.default, True)} | "
                    f"{_cell(row.allowed)} | {_cell(row.meaning)} |"
                )
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> None:
    """`python -m adv_smooth.app.key_reference [--conf DIR]`: the page on stdout (DIR: another conf/ tree)."""
    argv = sys.argv[1:] if argv is None else argv
    conf_dir = Path(argv[argv.index("--conf") + 1]) if "--conf" in argv else None
    sys.stdout.write(render_markdown(conf_dir))


if __name__ == "__main__":
    main()
