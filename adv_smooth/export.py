"""`python -m adv_smooth.export RUN_DIR|CHECKPOINT [--out FILE]`: a run's network as a `.safetensors` file to share.

Given a run directory, the weights it tested (results.json's `tested_checkpoint`, else `checkpoints/last.ckpt`);
given a checkpoint, that one. The file holds the network's tensors (the Lightning module's `net.` prefix dropped)
and, as metadata, the run's model and dataset configs, seed and commit, so a reader knows what the tensors are.
Loading it cannot run code (it is not a pickle); `python -m adv_smooth.evaluate weights=FILE model=...` reads it.
Bad input is one line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from adv_smooth.utils.checkpoints import SAFETENSORS, export_safetensors
from adv_smooth.utils.errors import UserError


def _source(path: Path) -> tuple[Path, dict]:
    """(the checkpoint to export, the run's results.json as a dict or {})."""
    run_dir = path if path.is_dir() else path.parent.parent
    results: dict = {}
    if (run_dir / "results.json").is_file():
        from adv_smooth.run_record import read

        results = read(run_dir / "results.json").to_dict()
    if not path.is_dir():
        return path, results
    tested = results.get("tested_checkpoint")
    checkpoint = Path(tested) if tested and Path(tested).is_file() else path / "checkpoints" / "last.ckpt"
    if not checkpoint.is_file():
        raise UserError(f"{path} holds no checkpoints/last.ckpt and no tested checkpoint: give a checkpoint file")
    return checkpoint, results


def export(path: str | Path, out: str | Path | None = None) -> Path:
    """Write the `.safetensors` file (default: beside the checkpoint, same stem); returns its path."""
    checkpoint, results = _source(Path(path))
    target = Path(out) if out is not None else checkpoint.with_suffix(SAFETENSORS)
    if target.suffix != SAFETENSORS:
        raise UserError(f"--out {target} is invalid: a file name ending in {SAFETENSORS}")
    config = results.get("config") or {}
    metadata = {
        "model": json.dumps(config.get("model", {})),
        "dataset": json.dumps(config.get("dataset", {})),
        "seed": str(results.get("seed", "")),
        "git_commit": str(results.get("git_commit", "")),
        "source": str(checkpoint),
    }
    return export_safetensors(checkpoint, target, metadata)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m adv_smooth.export", description=__doc__.splitlines()[0])
    parser.add_argument("path", help="a run directory or a checkpoint (.ckpt, or a state_dict .pt)")
    parser.add_argument("--out", default=None, help="the .safetensors file (default: beside the checkpoint)")
    args = parser.parse_args(argv)
    try:
        written = export(args.path, args.out)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:
        print(f"error: could not write the export: {type(e).__name__}: {' '.join(str(e).split())}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote: {written}")


if __name__ == "__main__":
    main()
