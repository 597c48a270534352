"""One typed record of a run: what a run dir's results.json holds, written and read in one place.

Every results.json (a training, an evaluation, a failed or an interrupted run) is a `RunRecord`. Its top
level and its common blocks are dataclasses; blocks whose inner layout is open-ended (an attack's curve, the
resolved config, the metrics Lightning logged) stay mappings. A field left at `ABSENT` is not in the file:
the file keeps the layout it always had (a training record names no `task`, a failure record holds only what
is known), and a key that is present with the value null stays so.

`RunRecord.write(run_dir)` writes the file atomically (a temp file in the same dir, then a rename).
`read(path)` validates it (one `RecordError` line naming the file and the bad field) and migrates older
files: a file without `schema_version` is version 1, the layout before this module, read with defaults
filled in (a status-less file counts as completed, as the report always read it). Keys this module does not
know are kept (`extra`), so rewriting an older or newer-minor file loses nothing.

`json_schema()` turns the dataclasses into the JSON Schema shipped as docs/results.schema.json
(`python -m adv_smooth.run_record --schema`); `validate(instance, schema)` checks a file against it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from adv_smooth.utils.errors import UserError
from adv_smooth.utils.io import write_json_atomic

FILE = "results.json"
SCHEMA_VERSION = 2  # 1: the layout before this module (no `schema_version`); 2: + schema_version, provenance
STATUSES = ("completed", "failed", "interrupted")


class _Absent:
    """The value of a field whose key is not in the file."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


class RecordError(UserError):
    """A results.json that is not a valid record: `reason` says what, without the file's name."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


def _opt(description: str = "") -> Any:
    """A field absent unless given."""
    return field(default=ABSENT, metadata={"description": description})


def _extra() -> Any:
    """The keys of the block this module does not know, kept as they were."""
    return field(default_factory=dict, metadata={"extra": True})


# -- the blocks ------------------------------------------------------------------------------------------------


@dataclass
class Provenance:
    """What made the run; its keys sit at the top level of results.json."""

    git_commit: str = _opt("commit of the source tree the package ran from, or 'unknown'")
    git_dirty: bool | None = _opt("tracked files differed from the commit (null: unknown)")
    versions: dict[str, str] = _opt("python, adv_smooth and the libraries whose version changes the numbers")
    split_sizes: dict[str, int | None] = _opt("images per split as the run used them")
    split_fingerprints: dict[str, Any] = _opt("which images each split held (data/identity.py)")


@dataclass
class Honesty:
    """The honesty checks of the test split's records."""

    warnings: list[dict[str, Any]] = _opt("one entry per failed check, each with its `message`")
    extra: dict[str, Any] = _extra()


@dataclass
class SplitRobustness:
    """One split's robustness summary (`robustness/curves.summarize`)."""

    n: int = _opt("images evaluated")
    clean_acc: float = _opt("clean accuracy on them")
    cascade: bool = _opt("each attack ran only on the images the earlier ones left robust")
    attacks: dict[str, dict[str, Any]] = _opt("per attack: levels, describe, traits, acc, cumulative_acc, ...")
    subset: dict[str, Any] = _opt("eval.test_subset: n of the split's images and the seed")
    worst: dict[str, Any] = _opt("the worst case over the attacks, per level")
    honesty: list[dict[str, Any]] = _opt("honesty warnings of this split")
    certified: dict[str, Any] = _opt("eval=certified: the smoothed classifier's certified accuracy")
    records: str = _opt("file name of the per-image records beside results.json")
    extra: dict[str, Any] = _extra()


@dataclass
class Snapshots:
    """Snapshot-ensemble checkpoints (`lightning/snapshots.py`)."""

    cycles: int = _opt("learning-rate cycles")
    files: list[str] = _opt("the snapshot checkpoints in cycle order")
    epochs: list[int] = _opt("the epoch each was saved at")
    evaluate: str = _opt("the command that evaluates them as one ensemble")
    extra: dict[str, Any] = _extra()


@dataclass
class TestSubset:
    """Which test images were evaluated when not the whole split (`eval.test_subset`)."""

    __test__ = False  # not a pytest class

    n: int = _opt("images evaluated")
    of: int = _opt("images in the split")
    seed: int | None = _opt("the draw's seed")
    images: str = _opt("the images in words")
    extra: dict[str, Any] = _extra()


@dataclass
class Ensemble:
    """An evaluated ensemble of checkpoints: its size and what attacking it costs."""

    members: int = _opt("member networks")
    passes_per_attack_step: int = _opt("forward and backward passes per attack step")
    note: str = _opt("the cost in words")
    extra: dict[str, Any] = _extra()


@dataclass
class Member:
    """One member of an evaluated ensemble, through the same evaluation."""

    ckpt_path: str = _opt("the member's checkpoint")
    metrics: dict[str, Any] = _opt("the scalars logged on its test split")
    robustness: dict[str, SplitRobustness] = _opt("per split")
    honesty: Honesty = _opt()
    test_subset: TestSubset = _opt()
    extra: dict[str, Any] = _extra()


@dataclass
class RunRecord:
    """A run dir's results.json."""

    status: str = field(metadata={"description": "completed, failed or interrupted", "enum": STATUSES})
    schema_version: int = field(default=SCHEMA_VERSION, metadata={"description": "layout version of the file"})
    task: str = _opt("evaluate for an evaluation; absent for training")
    error: str = _opt("why the run failed or stopped")
    # an interrupted run (SIGTERM / SIGUSR1)
    signal: str = _opt("the signal that stopped it")
    checkpoint: str | None = _opt("the checkpoint to resume from")
    epochs_done: int | None = _opt("epochs completed")
    global_step: int | None = _opt("optimizer steps taken")
    # every completed run
    seed: int | None = _opt("the run's seed")
    choices: dict[str, str] = _opt("the config-group choices (dataset, model, defense, ...)")
    wall_time_s: float = _opt("wall time, every part of a resumed run")
    metrics: dict[str, Any] = _opt("the scalars logged on the test split (test/acc, test/<attack>/snr33/acc, ...)")
    provenance: Provenance = field(default=ABSENT, metadata={"flatten": True})
    robustness: dict[str, SplitRobustness] = _opt("per split (val, test)")
    honesty: Honesty = _opt()
    test_subset: TestSubset = _opt()
    config: dict[str, Any] = _opt("the resolved config")
    # training
    best_checkpoint: str = _opt("the best-on-validation checkpoint ('' when none)")
    best_epoch: int | None = _opt("its epoch, 0-based (Lightning's); printed and file names: best_epoch + 1")
    tested_checkpoint: str = _opt("the weights tested ('' = the final weights)")
    epochs: int = _opt("epochs trained")
    wall_time_parts_s: list[float] = _opt("wall time of each part of a resumed run")
    best_val_acc: float | None = _opt("validation accuracy of the best checkpoint")
    selected_on: str = _opt("the validation metric that chose the best checkpoint (val/acc, val/robust_acc, ...)")
    best_score: float | None = _opt("that metric's value at the best checkpoint")
    fit: dict[str, float] = _opt("the scalars at the end of training (val/..., train/...)")
    optimized: dict[str, float] = _opt("the metric a hyperparameter search maximizes")
    snapshots: Snapshots = _opt()
    # evaluation
    ckpt_path: str | list[str] = _opt("the evaluated checkpoint, or an ensemble's checkpoints")
    weights: str = _opt("weights= : the outside network's weights file")
    model: str = _opt("weights= : the model's _target_")
    ensemble: Ensemble = _opt()
    members: list[Member] = _opt("an ensemble's members, each evaluated alone")
    extra: dict[str, Any] = _extra()

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of results.json."""
        return _dump(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str | Path = FILE) -> RunRecord:
        """Validate and migrate a parsed results.json (`where` names it in errors)."""
        if not isinstance(data, Mapping):
            raise RecordError(where, f"it holds {_kind(data)}, not a JSON object")
        return _load(RunRecord, migrate(dict(data), where), where, "")

    def write(self, run_dir: str | Path) -> Path:
        """Write `run_dir/results.json` atomically; returns its path."""
        return write_json_atomic(Path(run_dir) / FILE, self.to_dict())


def fields_of(block: Mapping[str, Any], cls: type = RunRecord, where: str = "results") -> dict[str, Any]:
    """Typed field values of the keys a partial mapping holds (a callback's `results()` block), for `cls(**...)`;
    unknown keys go to `extra`."""
    values = _load_values(cls, dict(block), where, "", partial=True)
    return {k: v for k, v in values.items() if k != "extra" or v}


# -- reading ----------------------------------------------------------------------------------------------------


def read(path: str | Path) -> RunRecord:
    """The record in `path` (a results.json, or a run dir holding one), validated and migrated."""
    path = Path(path)
    if path.is_dir():
        path = path / FILE
    try:
        text = path.read_text()
    except OSError as e:
        raise RecordError(path, f"cannot be read ({e.strerror or e})") from None
    try:
        data = json.loads(text)
    except ValueError as e:
        raise RecordError(path, f"not JSON ({e})") from None
    return RunRecord.from_dict(data, path)


def migrate(data: dict[str, Any], where: str | Path = FILE) -> dict[str, Any]:
    """An older layout brought to `SCHEMA_VERSION` (defaults filled in, nothing dropped)."""
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RecordError(where, f"field schema_version: expected a positive integer, got {version!r}")
    if version > SCHEMA_VERSION:
        raise RecordError(
            where, f"schema_version {version} is newer than this adv_smooth reads ({SCHEMA_VERSION}): upgrade it"
        )
    if version == 1:  # before the typed record: the report read a status-less file as a completed run
        data = {**data, "schema_version": 2}
        data.setdefault("status", "completed")
    return data


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, vars(sys.modules[__name__]))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _describe(tp: Any) -> str:
    if tp is Any:
        return "any value"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp) or tp is dict or typing.get_origin(tp) in (dict, Mapping):
        return "an object"
    if tp is list or typing.get_origin(tp) is list:
        return "an array"
    if typing.get_origin(tp) in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(tp, str(tp))


def _load(cls: type, data: dict[str, Any], where: str | Path, prefix: str) -> Any:
    return cls(**_load_values(cls, data, where, prefix))


def _load_values(cls: type, data: dict[str, Any], where: str | Path, prefix: str, partial: bool = False) -> Any:
    hints = _hints(cls)
    values: dict[str, Any] = {}
    known: set[str] = set()
    extra_field = None
    for f in dataclasses.fields(cls):
        if f.metadata.get("extra"):
            extra_field = f.name
            continue
        tp = hints[f.name]
        if f.metadata.get("flatten"):
            inner = {g.name for g in dataclasses.fields(tp) if not g.metadata.get("extra")}
            block = {k: data[k] for k in inner if k in data}
            known |= inner
            if block:
                values[f.name] = _load(tp, block, where, prefix)
            continue
        known.add(f.name)
        if f.name in data:
            values[f.name] = _value(tp, data[f.name], where, f"{prefix}{f.name}")
            allowed = f.metadata.get("enum")
            if allowed and values[f.name] not in allowed:
                raise RecordError(
                    where, f"field {prefix}{f.name}: {values[f.name]!r} is not one of {', '.join(allowed)}"
                )
        elif not partial and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise RecordError(where, f"field {prefix}{f.name}: missing")
    if extra_field is not None:
        values[extra_field] = {k: v for k, v in data.items() if k not in known}
    return values


def _value(tp: Any, value: Any, where: str | Path, name: str) -> Any:
    """`value` checked against the annotation `tp` (dataclasses built from their objects)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        for arg in args:
            try:
                return _value(arg, value, where, name)
            except RecordError:
                continue
        raise RecordError(where, f"field {name}: expected {_describe(tp)}, got {_kind(value)}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise RecordError(where, f"field {name}: expected an object, got {_kind(value)}")
        return _load(tp, value, where, f"{name}.")
    if tp is dict or origin in (dict, Mapping):
        if not isinstance(value, dict):
            raise RecordError(where, f"field {name}: expected an object, got {_kind(value)}")
        inner = args[1] if args else Any
        return {str(k): _value(inner, v, where, f"{name}.{k}") for k, v in value.items()}
    if tp is list or origin is list:
        if not isinstance(value, list):
            raise RecordError(where, f"field {name}: expected an array, got {_kind(value)}")
        inner = args[0] if args else Any
        return [_value(inner, v, where, f"{name}[{i}]") for i, v in enumerate(value)]
    ok = {
        type(None): value is None,
        str: isinstance(value, str),
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
    }.get(tp)
    if ok is None:
        raise TypeError(f"run_record: no reader for the annotation {tp!r} of {name}")
    if not ok:
        raise RecordError(where, f"field {name}: expected {_describe(tp)}, got {_kind(value)}")
    return value


# -- writing ----------------------------------------------------------------------------------------------------


def _dump(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if value is ABSENT:
                continue
            if f.metadata.get("extra"):
                out.update({k: _dump(v) for k, v in value.items() if k not in out})
            elif f.metadata.get("flatten"):
                out.update(_dump(value))
            else:
                out[f.name] = _dump(value)
        return out
    if isinstance(obj, dict):
        return {str(k): _dump(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_dump(v) for v in obj]
    return obj


# -- JSON Schema ------------------------------------------------------------------------------------------------


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12 subset: type, properties, required, items, additionalProperties, enum,
    anyOf, $ref/$defs) of what `RunRecord.write` produces."""
    defs: dict[str, Any] = {}
    root = _object_schema(RunRecord, defs)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "adv_smooth results.json",
        **root,
        "$defs": dict(sorted(defs.items())),
    }


def _object_schema(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    hints = _hints(cls)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        if f.metadata.get("extra"):
            continue
        if f.metadata.get("flatten"):
            inner = _object_schema(hints[f.name], defs)
            properties.update(inner["properties"])
            continue
        schema = _type_schema(hints[f.name], defs)
        if f.metadata.get("description"):
            schema = {"description": f.metadata["description"], **schema}
        if f.metadata.get("enum"):
            schema["enum"] = list(f.metadata["enum"])
        properties[f.name] = schema
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if cls is RunRecord:
        required.append("schema_version")  # always written
    if required:
        schema["required"] = required
    if cls.__doc__:
        schema = {"description": " ".join(cls.__doc__.split()), **schema}
    return schema


def _type_schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return {}
    if origin in (Union, types.UnionType):
        return {"anyOf": [_type_schema(a, defs) for a in args]}
    if dataclasses.is_dataclass(tp):
        if tp.__name__ not in defs:
            defs[tp.__name__] = {}  # claimed before recursing
            defs[tp.__name__] = _object_schema(tp, defs)
        return {"$ref": f"#/$defs/{tp.__name__}"}
    if tp is dict or origin in (dict, Mapping):
        inner = _type_schema(args[1], defs) if args else {}
        return {"type": "object", "additionalProperties": inner} if inner else {"type": "object"}
    if tp is list or origin is list:
        inner = _type_schema(args[0], defs) if args else {}
        return {"type": "array", "items": inner} if inner else {"type": "array"}
    return {"type": {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}[tp]}


def validate(instance: Any, schema: Mapping[str, Any], root: Mapping[str, Any] | None = None, at: str = "$") -> None:
    """Check `instance` against a schema of the subset `json_schema` emits; ValueError names the first mismatch."""
    root = schema if root is None else root
    if "$ref" in schema:
        name = str(schema["$ref"]).removeprefix("#/$defs/")
        return validate(instance, root["$defs"][name], root, at)
    if "anyOf" in schema:
        errors = []
        for option in schema["anyOf"]:
            try:
                return validate(instance, option, root, at)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError(f"{at}: matches none of anyOf ({'; '.join(errors)})")
    kind = schema.get("type")
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
    }
    if kind is not None and not checks[kind](instance):
        raise ValueError(f"{at}: expected {kind}, got {_kind(instance)}")
    if "enum" in schema and instance not in schema["enum"]:
        raise ValueError(f"{at}: {instance!r} is not one of {schema['enum']}")
    if isinstance(instance, dict):
        for name in schema.get("required", []):
            if name not in instance:
                raise ValueError(f"{at}: required property {name!r} missing")
        properties = schema.get("properties", {})
        for key, value in instance.items():
            if key in properties:
                validate(value, properties[key], root, f"{at}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                validate(value, schema["additionalProperties"], root, f"{at}.{key}")
            elif schema.get("additionalProperties") is False:
                raise ValueError(f"{at}: unexpected property {key!r}")
    if isinstance(instance, list) and "items" in schema:
        for i, value in enumerate(instance):
            validate(value, schema["items"], root, f"{at}[{i}]")
    return None


def schema_text() -> str:
    """docs/results.schema.json's contents."""
    return json.dumps(json_schema(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--schema"]:
        sys.stdout.write(schema_text())
        return 0
    if len(args) == 1 and not args[0].startswith("-"):  # check a file: one line, exit 0 or 2
        try:
            record = read(args[0])
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"{args[0]}: a valid {record.status} record (schema_version {record.schema_version})")
        return 0
    print("usage: python -m adv_smooth.run_record --schema | RESULTS_JSON", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
