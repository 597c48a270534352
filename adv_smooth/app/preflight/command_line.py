"""The command line, vetted before Hydra runs: group options that exist, keys the configs have, `+` keys something
reads, launchers whose packages are installed; each refusal one `UserError` line (did-you-mean included).

Composing once here costs a fraction of a second and turns Hydra's multi-line messages (exit status 1) into the
project's one-line errors. `config_dir` says where the configs are, installed or in a checkout.
"""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig

from adv_smooth.app.preflight import suggest
from adv_smooth.app.preflight.launchers import check_launcher, check_plugin_targets, missing_plugin_config
from adv_smooth.app.preflight.magnitudes import check_magnitudes
from adv_smooth.utils.conf_dir import config_dir
from adv_smooth.utils.errors import UserError
from adv_smooth.utils.ranks import launched_rank_zero

# Keys renamed, per entry point's config: the old spelling is still accepted in this release, with a notice.
RENAMED = {"config": {"ckpt_path": "resume"}, "evaluate": {"ckpt_path": "ckpt"}}
# What an entry point cannot run without: one of these keys, else this one-line refusal.
REQUIRED = {
    "evaluate": (
        ("ckpt", "weights"),
        "ckpt is required: python -m adv_smooth.evaluate ckpt=PATH/TO/x.ckpt (or a list [a.ckpt,b.ckpt]: one "
        "ensemble), or weights=FILE model=<config> for a network that is not one of our checkpoints",
    )
}


def renamed_keys(args: list[str], config_name: str) -> list[str]:
    """`args` with each renamed key in its new spelling (`ckpt_path=last` -> `resume=last` for training, `ckpt=` for
    an evaluation), saying so on stderr in one line per key."""
    renames = RENAMED.get(config_name, {})
    out = []
    for arg in args:
        key, sep, value = arg.partition("=")
        bare = key.lstrip("+~")
        if arg.startswith("-") or bare not in renames:
            out.append(arg)
            continue
        new = renames[bare]
        if launched_rank_zero():  # DDP re-runs the command in every process: one notice
            print(f"note: {bare}= is now {new}= ({bare}= is still accepted in this release)", file=sys.stderr)
        out.append(f"{key[: len(key) - len(bare)]}{new}{sep}{value}")
    return out


def _is_sweep_config_request(args: list[str]) -> bool:
    return any(a in ("-m", "--multirun") for a in args) and any(a in ("-c", "--cfg") for a in args)


def _first_job_request(args: list[str]) -> list[str]:
    """`-m ... --cfg job`: Hydra prints one job's config and refuses --multirun with --cfg, so show the
    sweep's first job (each sweep override at its first value; a preset's own sweep, e.g. its rows and
    seeds, at its default), and say so on stderr."""
    flags = [a for a in args if a.startswith("-") and a not in ("-m", "--multirun")]
    cfg_at = next(i for i, a in enumerate(args) if a in ("-c", "--cfg"))
    kind = args[cfg_at + 1] if cfg_at + 1 < len(args) else None
    overrides = [a for i, a in enumerate(args) if not a.startswith("-") and i != cfg_at + 1]
    print(
        "note: --multirun with --cfg shows the sweep's first job (each swept key at its first value)", file=sys.stderr
    )
    return [*flags, *([kind] if kind else []), *_first_job(overrides)]


def check_command_line(args: list[str], conf: str | None = None, config_name: str = "config") -> DictConfig | None:
    """Refuse unknown group options and keys the configs lack, as one `UserError` line, before Hydra runs.

    Hydra reports these itself, over several lines and with exit status 1; composing once here
    (a fraction of a second) turns them into the project's one-line errors. Returns the composed config
    (with its `hydra` node) of a single run, None otherwise (a sweep, --cfg, --info, help).
    """
    from hydra._internal.utils import get_args_parser

    parsed, _ = get_args_parser().parse_known_args(args)
    if parsed.help or parsed.hydra_help or parsed.shell_completion or parsed.experimental_rerun:
        return
    _check_required(parsed.overrides, parsed.config_name or config_name)
    modes = [
        flag
        for flag, on in (
            ("--run", parsed.run),
            ("--multirun", parsed.multirun),
            ("--cfg", parsed.cfg),
            ("--info", parsed.info),
        )
        if on
    ]
    if len(modes) > 1:  # Hydra refuses this too, with a traceback
        raise UserError(
            f"{' and '.join(modes)} cannot be combined: give one of --run, --multirun, --cfg, --info "
            "(to see one sweep job's config, drop --multirun and pass that job's values with --cfg job)"
        )
    check_group_options(parsed.overrides, conf)
    check_launcher(parsed.overrides, conf or config_dir())  # its packages, before Hydra looks for them
    if parsed.config_dir is not None or parsed.config_path is not None:
        return None
    composed = check_composition(parsed.overrides, parsed.config_name or config_name, parsed.multirun, conf)
    if parsed.multirun:  # a preset's sweeper (hparams_search=optuna): its packages, with the extra; a single run
        check_plugin_targets(composed)  # builds neither sweeper nor launcher
    check_magnitudes(composed)  # numbers no knob takes (10**20, inf), for every entry point, checked key or not
    return None if parsed.multirun or parsed.cfg or parsed.info else composed


def _check_required(overrides: list[str], config_name: str) -> None:
    """The key an entry point cannot run without (an evaluation: what to evaluate), before anything else."""
    if config_name not in REQUIRED:
        return
    keys, message = REQUIRED[config_name]
    if not any(o.partition("=")[0].lstrip("+~") in keys and "=" in o for o in overrides):
        raise UserError(message)


def check_composition(overrides: list[str], config_name: str, multirun: bool, conf: str | None = None) -> DictConfig:
    """Compose the config as Hydra will (a sweep's first value stands for all of them)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    def composed(job: list[str]) -> DictConfig:
        GlobalHydra.instance().clear()
        try:
            with initialize_config_dir(config_dir=conf or config_dir(), version_base="1.3"):
                return compose(config_name, overrides=job, return_hydra_config=True)
        finally:
            GlobalHydra.instance().clear()

    job = _first_job(overrides) if multirun else overrides
    try:
        cfg = composed(job)
    except (HydraException, OmegaConfBaseException) as e:  # a mistyped key: did-you-mean, not Hydra's "+key" advice
        advice = missing_plugin_config(str(e)) or suggest.unknown_override(str(e), job, composed, conf or config_dir())
        raise UserError(advice or f"cannot compose the config: {suggest.without_append_advice(_one_line(e))}") from None
    suggest.check_added_keys(job, cfg, conf or config_dir())  # a `+key` nothing reads
    return cfg


def _first_job(overrides: list[str]) -> list[str]:
    """Each sweep override replaced by its first value; sweeps that cannot be enumerated are left out."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    job = []
    for override in OverridesParser.create().parse_overrides(overrides):
        if not override.is_sweep_override():
            job.append(override.input_line)
            continue
        try:
            job.append(f"{override.get_key_element()}={next(iter(override.sweep_string_iterator()))}")
        except Exception:  # glob() over options, interval(): Hydra's own sweep validation covers them
            continue
    return job


def _one_line(e: BaseException) -> str:
    text = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
    cause = e.__cause__
    if cause is not None and str(cause).strip():
        text += f" ({str(cause).splitlines()[0].strip()})"
    return text


def check_group_options(args: list[str], conf: str | None = None) -> None:
    """Refuse `group=option` overrides naming an option that does not exist, in one line.

    Hydra's own message spans several lines and ends with a hint about tracebacks; this runs first.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    root = Path(conf or config_dir())
    groups = {p.name for p in root.iterdir() if p.is_dir()}
    try:
        overrides = OverridesParser.create().parse_overrides([a for a in args if not a.startswith("-")])
    except Exception as e:  # Hydra's grammar errors: keep their first line, and say what the grammar takes
        raise UserError(f"cannot parse overrides: {str(e).splitlines()[0]}{_grammar_hint(args)}") from None
    for override in overrides:
        if not override.key_or_group:  # `=5`: Hydra takes it for a config group named '' and raises a traceback
            raise UserError(f"{override.input_line!r} has no key: write key=value, e.g. seed=5")
        group = override.key_or_group
        if group not in groups or override.is_delete():
            continue
        values = list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]
        available = sorted(p.stem for p in (root / group).glob("*.yaml"))
        for value in values:
            if value is None and group == "experiment":
                continue
            if str(value) not in available:
                guess = suggest.closest(str(value), available)
                meant = f"; did you mean {group}={guess}?" if guess else ""
                listed = ", ".join(available)
                raise UserError(f"{group}={value!r} is not a known {group} option{meant} (available: {listed})")


def _grammar_hint(args: list[str]) -> str:
    """What Hydra's override grammar allows, for the override its lexer stopped at: an unquoted value is ASCII
    letters, digits and `_-+./:@~*$%?`, so a value with other characters (`é`, a full-width `６４`) must be quoted."""
    odd = [a for a in args if not a.startswith("-") and not a.isascii()]
    if odd and not odd[0].partition("=")[0].isascii():
        return f" ({odd[0]!r}: a key is an ASCII name, e.g. dataset.batch_size; see --help for the keys)"
    if odd:
        shown = odd[0]
        return (
            f" ({shown!r} has characters outside ASCII: numbers take ASCII digits only, and any other value with "
            "such characters must be quoted, e.g. key='café')"
        )
    return " (write key=value; quote a value with spaces or special characters, e.g. key='a b')"
