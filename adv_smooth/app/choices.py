"""The config-group choices (dataset, model, defense, ...) a run's results.json and summary header name.

Training reads them from Hydra. An evaluation's own choices describe its command line, whose dataset and
model defaults have nothing to do with the checkpoint: it reports those of the run that trained the weights
(its `.hydra/hydra.yaml`), and its own `eval` choice when the command line picks one.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf


def hydra_choices() -> dict[str, str]:
    """This job's choices, Hydra's own groups left out; {} outside a Hydra job."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    return {k: str(v) for k, v in HydraConfig.get().runtime.choices.items() if not k.startswith("hydra")}


def saved_choices(run_dir: Path) -> dict[str, str]:
    """The choices of the run in `run_dir`, from its `.hydra/hydra.yaml` (beside the config.yaml the evaluation
    rebuilds the network from); {} when it is missing or unreadable. The file may come from someone else: only
    plain strings are read, nothing in it is resolved or instantiated."""
    saved = run_dir / ".hydra" / "hydra.yaml"
    if not saved.is_file():
        return {}
    try:
        node = OmegaConf.select(OmegaConf.load(saved), "hydra.runtime.choices")
        choices = OmegaConf.to_container(node, resolve=False) if isinstance(node, DictConfig) else {}
    except Exception:  # not YAML, not a mapping: the summary then names no choices, the evaluation still runs
        return {}
    return {str(k): v for k, v in choices.items() if isinstance(v, str) and not str(k).startswith("hydra")}


def evaluation_choices(runs: list[dict[str, str]], eval_chosen: bool) -> dict[str, str]:
    """An evaluation's choices: the trained runs' (`runs`, an ensemble's differing ones joined with ` + `), then
    this command's `eval` if it chose one (`eval_chosen`); for `weights=` (an outside network, `runs` empty) this
    command's own, without a defense."""
    own = hydra_choices()
    if not runs:
        return {k: v for k, v in own.items() if k != "defense"}
    keys = dict.fromkeys(k for run in runs for k in run)
    merged = {k: " + ".join(dict.fromkeys(run.get(k, "?") for run in runs)) for k in keys}
    if "eval" in own and eval_chosen:
        merged["eval"] = own["eval"]
    return merged
