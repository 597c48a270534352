"""Loading checkpoints safely, and the extra state a checkpoint needs for an exact resume.

A checkpoint is a pickle, and unpickling can run any code the file names. Every checkpoint or cache
this project reads goes through `load_checkpoint`, which uses torch's weights-only unpickler: tensors,
numbers, strings and plain containers load; anything else (a class whose `__reduce__` calls
`os.system`, say) is refused before it runs, with one line naming the file.

Lightning does not store the random number generators. For a resumed run to end with the same
weights as an uninterrupted one, the epoch that follows the checkpoint must draw the same shuffle and
the same augmentation noise, so `rng_states` / `set_rng_states` carry the generators in a form the
weights-only unpickler accepts (numpy's state holds an ndarray, which it refuses: stored as a tensor).
"""

from __future__ import annotations

import pickle
import random
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adv_smooth.utils.errors import UserError, file_problem

SAFETENSORS = ".safetensors"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """`torch.load(path, weights_only=True)` on the CPU (a `.safetensors` file: its tensors, `load_safetensors`);
    every way it can fail becomes a `UserError`.

    Missing, truncated or foreign files and files that would unpickle arbitrary objects are all user
    errors here: the caller named a file that is not a checkpoint this project may load.
    """
    path = Path(path)
    problem = file_problem(path)
    if problem is not None:
        raise UserError(f"checkpoint {str(path)!r} {problem}")
    if path.suffix == SAFETENSORS:
        return load_safetensors(path)
    try:
        with warnings.catch_warnings():  # torch's notes on the file ("Detected pickle protocol 4"): it loads or
            warnings.simplefilter("ignore")  # is refused below, in one line either way
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise UserError(f"checkpoint {str(path)!r} refused: {_refusal_reason(str(e))}") from None
    except Exception as e:  # zip/pickle/EOF errors of a truncated or foreign file
        detail = str(e).splitlines()[0].strip() if str(e).strip() else "unexpected end of file"
        raise UserError(
            f"checkpoint {str(path)!r} is not a readable PyTorch checkpoint (truncated or corrupt?): "
            f"{type(e).__name__}: {detail}"
        ) from None
    if not isinstance(checkpoint, dict):
        raise UserError(f"checkpoint {str(path)!r} holds a {type(checkpoint).__name__}, not a checkpoint dict")
    return checkpoint


def _refusal_reason(message: str) -> str:
    """One line out of torch's multi-paragraph weights-only message: what the file tried to load."""
    found = re.search(r"GLOBAL ([\w.]+)", message)
    if found:
        return (
            f"it would unpickle {found.group(1)}, and only tensors and plain containers are loaded "
            "(loading arbitrary objects could run code from the file)"
        )
    detail = re.search(r"WeightsUnpickler error:\s*(.+)", message)
    return f"not a weights-only checkpoint ({detail.group(1).strip() if detail else 'unpickling failed'})"


def rng_states() -> dict[str, Any]:
    """The CPU generators of torch, numpy and Python's `random`, loadable with `weights_only=True`.

    CUDA generators are included when CUDA is initialized (a GPU run's dropout/noise draws on them).
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["torch.cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Inverse of `rng_states` (a checkpoint from a GPU run restores its CUDA state only on a GPU)."""
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    if "torch.cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["torch.cuda"])


def state_mismatch(
    saved: Mapping[str, Any], expected: Mapping[str, torch.Tensor], what: str = "the model"
) -> str | None:
    """The first way `saved` (a checkpoint's state_dict) does not fit `expected` (a module's), in words, or None.

    Why not torch's own message: `load_state_dict` puts a header ("Error(s) in loading state_dict for X:") on
    the first line and every difference on lines of their own, so a one-line error cut to the first line says
    nothing. Tensors are walked in the module's order (the first differing layer is the most telling: the stem
    for another width, the classifier for another class count); tensors only the checkpoint has come last.
    """
    if not isinstance(saved, Mapping):
        return f"its state_dict is a {type(saved).__name__}, not a mapping of tensor names to tensors"
    for key, tensor in expected.items():
        if key not in saved:
            return f"it lacks tensor {key!r}"
        value = saved[key]
        if not isinstance(value, torch.Tensor):
            return f"its {key!r} is not a tensor ({type(value).__name__})"
        if value.shape != tensor.shape:
            return f"{key!r} has shape {tuple(value.shape)} in it, {what} expects {tuple(tensor.shape)}"
    extra = next((key for key in saved if key not in expected), None)
    return None if extra is None else f"it has an extra tensor {extra!r}"


def check_state_matches(checkpoint: dict[str, Any], module: torch.nn.Module, path: str | Path) -> None:
    """Refuse, in one line, a checkpoint whose weights do not fit `module` (another model or dataset).

    Lightning would raise the same mismatch as a long `load_state_dict` traceback after the data
    is loaded; this names the first differing tensor and the checkpoint.
    """
    state = checkpoint.get("state_dict")
    if not isinstance(state, dict):
        raise UserError(f"checkpoint {str(path)!r} has no 'state_dict': not a training checkpoint of this project")
    mismatch = state_mismatch(state, module.state_dict())
    if mismatch is not None:
        raise UserError(
            f"checkpoint {str(path)!r} does not match this model: {mismatch} "
            "(use the same model.* and dataset as the run that saved it)"
        )


def load_safetensors(path: Path) -> dict[str, Any]:
    """A `.safetensors` file's tensors (a plain state_dict): the format holds tensors and string metadata only, so
    nothing in it can run; a foreign or truncated file is one line."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return dict(load_file(str(path), device="cpu"))
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(
            f"checkpoint {str(path)!r} is not a readable safetensors file: {str(e).splitlines()[0]}"
        ) from None


def export_safetensors(checkpoint: str | Path, out: str | Path, metadata: Mapping[str, str]) -> Path:
    """The network's weights of a Lightning checkpoint (`net.` keys, the prefix dropped) or of a plain state_dict as
    a `.safetensors` file with `metadata` (strings), for sharing: loading it cannot run code, unlike a pickle."""
    from safetensors.torch import save

    from adv_smooth.utils.io import write_bytes_atomic

    loaded = load_checkpoint(checkpoint)
    state = loaded["state_dict"] if isinstance(loaded.get("state_dict"), dict) else loaded
    tensors = {k.removeprefix("net."): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if any(k.startswith("net.") for k in state):
        tensors = {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}
    if not tensors:
        raise UserError(f"checkpoint {str(checkpoint)!r} holds no weights to export")
    data = save({k: v.detach().contiguous() for k, v in tensors.items()}, metadata={**metadata, "format": "pt"})
    return write_bytes_atomic(out, data)
