"""Refuse sweep set-ups that would silently do the wrong thing, before any data is loaded.

* Lightning's `ddp` strategy starts its extra processes by re-running the command line; inside a Hydra
  multirun that command is the whole sweep, so every child launches the sweep again (a known open
  Lightning/Hydra issue). `ddp_spawn` forks the training function instead, and a launcher (submitit on
  SLURM, where SLURM starts the processes) gives each job its own GPU(s).
* A hyperparameter search (any sweeper other than the basic grid one) that also runs the test split
  turns the test set into a validation set: searches must run with `test=false`.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, ListConfig

from adv_smooth.utils.errors import UserError

_BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def check_sweep(cfg: DictConfig) -> None:
    """All sweep checks; call once at the start of a job (a no-op outside a Hydra multirun)."""
    refuse_ddp_in_multirun(cfg)
    refuse_test_in_search(cfg)


def _hydra() -> Any | None:
    """The Hydra config of the running job, or None when not inside a multirun (plain runs, tests)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    return hydra_cfg if hydra_cfg.mode == RunMode.MULTIRUN else None


def _several_devices(devices: Any) -> bool:
    """True unless `devices` surely means one device ("auto" and -1 may mean every GPU of the node)."""
    if isinstance(devices, (list, tuple, ListConfig)):
        return len(devices) > 1
    text = str(devices).strip()
    if "," in text:
        return len([d for d in text.split(",") if d.strip()]) > 1
    try:
        return int(text) > 1 or int(text) == -1
    except ValueError:
        return True  # "auto"


def _relaunching_strategy(strategy: Any) -> str | None:
    """The strategy's name if Lightning starts its extra processes by re-running the command line, else None.

    `ddp` (and its `ddp_find_unused_parameters_*` variants), `fsdp` and `deepspeed` do; `ddp_spawn`,
    `ddp_fork` and `ddp_notebook` create the processes from inside Python and are safe.
    """
    if isinstance(strategy, (dict, DictConfig)):  # a strategy to instantiate (`_target_`): judge by its class
        target = str(strategy.get("_target_", "")).rsplit(".", 1)[-1]
        start = str(strategy.get("start_method", "popen"))
        return target if target.startswith(("DDP", "FSDP", "DeepSpeed")) and start == "popen" else None
    name = str(strategy)
    if name.startswith(("ddp_spawn", "ddp_fork", "ddp_notebook")):
        return None
    return name if name.startswith(("ddp", "fsdp", "deepspeed")) else None


def _processes_started_externally() -> bool:
    """SLURM (srun / submitit) or torchrun start one process per device: Lightning then re-launches nothing."""
    from lightning_fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    return SLURMEnvironment.detect() or TorchElasticEnvironment.detect()


def refuse_ddp_in_multirun(cfg: DictConfig) -> None:
    """Raise a one-line `UserError` for `ddp`-style strategies on several devices inside a Hydra multirun."""
    if _hydra() is None:
        return
    trainer = cfg.get("trainer") or {}
    strategy = _relaunching_strategy(trainer.get("strategy", "auto"))
    if strategy is None:
        return
    devices = trainer.get("devices", "auto")
    if not (_several_devices(devices) or int(trainer.get("num_nodes", 1) or 1) > 1):
        return
    if _processes_started_externally():
        return
    raise UserError(
        f"trainer.strategy={strategy!r} with trainer.devices={devices!r} cannot run inside a multirun (-m): its "
        "child processes would re-launch the whole sweep; use trainer.strategy=ddp_spawn, or one GPU per job "
        "through a launcher (hydra/launcher=slurm_gpu, see docs/sweeps.md)"
    )


def refuse_test_in_search(cfg: DictConfig) -> None:
    """Raise a one-line `UserError` when a hyperparameter-search sweeper runs with `test=true`."""
    hydra_cfg = _hydra()
    if hydra_cfg is None or not cfg.get("test", True):
        return
    sweeper = str(hydra_cfg.sweeper.get("_target_", _BASIC_SWEEPER))
    if sweeper == _BASIC_SWEEPER:
        return
    name = sweeper.rsplit(".", 1)[-1]
    raise UserError(
        f"test=true is invalid in a hyperparameter search ({name}): choosing hyperparameters on the test split "
        "makes its numbers meaningless; set test=false and evaluate the chosen ones afterwards"
    )
