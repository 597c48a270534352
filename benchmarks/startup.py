"""What a project run costs before its first training step, phase by phase, in a fresh process.

    python -m benchmarks.startup [override ...]      (e.g. dataset=folder dataset.root=DIR)

Imports (the training task pulls in torch, Lightning, Hydra, TensorBoard's writer), config composition (the
real `conf/`, as the entry point composes it), then data: the dataset built and decoded (`build_datamodule`)
and its channel statistics. Prints one JSON line of seconds; `benchmarks/run.py` runs it beside whole runs and
adds the interpreter's own start-up (the process's wall time minus the phases).
"""

from __future__ import annotations

import json
import sys
import time

START = time.perf_counter()


def main(overrides: list[str]) -> None:
    out: dict[str, float] = {}
    t = time.perf_counter()
    from hydra import compose, initialize_config_dir

    import adv_smooth.app.training_run  # noqa: F401  (what `python -m adv_smooth` imports)
    from adv_smooth.app.build import build_datamodule
    from adv_smooth.app.preflight.command_line import config_dir

    out["imports_s"] = time.perf_counter() - t
    t = time.perf_counter()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    out["compose_s"] = time.perf_counter() - t
    t = time.perf_counter()
    datamodule = build_datamodule(cfg)
    _ = datamodule.mean, datamodule.std
    out["data_s"] = time.perf_counter() - t
    out["total_s"] = time.perf_counter() - START
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
