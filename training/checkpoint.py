"""Training checkpoints: everything needed to continue a run exactly, never unpickled.

A checkpoint is a folder ``step_00001000/`` holding

* ``tensors.safetensors``: every tensor (network weights, optimizer moments, random states),
* ``state.json``: everything else (step, epoch, options, schedules, python/numpy RNG), with
  placeholders where the tensors were, the checkpoint format version, and the sha256 of the
  tensors file so that a damaged file is caught before anything is loaded.

It is written into a temporary folder and renamed into place, so a crash (or a second
SIGTERM) while saving leaves the previous checkpoint intact; ``latest.json`` beside the
checkpoints names the newest one and is replaced atomically too.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from backend.errors import FormatVersionError, InputError
from backend.oserrors import writing
from backend.paths import atomic_write_json

CHECKPOINT_KIND = "everybody-dance-training-checkpoint"
CHECKPOINT_FORMAT = 1
TENSORS_FILE = "tensors.safetensors"
STATE_FILE = "state.json"
LATEST_FILE = "latest.json"
_STEP_DIR = re.compile(r"^step_(\d{8,})$")


# --------------------------------------------------------------------------------------------
# Nested state <-> (tensors, JSON)
# --------------------------------------------------------------------------------------------


def _flatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON-able form of ``obj`` with tensors and arrays moved into ``tensors``."""
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        # clone: safetensors refuses tensors that share storage, and the copy must not change
        # if training continues while the file is written.
        tensors[key] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        key = f"t{len(tensors)}"
        tensors[key] = torch.from_numpy(np.ascontiguousarray(obj).copy())
        return {"__ndarray__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {"__dict__": {k: _flatten(v, tensors) for k, v in obj.items()}}
        # optimizer state dicts use integer keys
        return {"__items__": [[_flatten(k, tensors), _flatten(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_flatten(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_flatten(v, tensors) for v in obj]
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint")


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__ndarray__" in obj:
        return tensors[obj["__ndarray__"]].numpy()
    if "__dict__" in obj:
        return {k: _unflatten(v, tensors) for k, v in obj["__dict__"].items()}
    if "__items__" in obj:
        return {_unflatten(k, tensors): _unflatten(v, tensors) for k, v in obj["__items__"]}
    if "__tuple__" in obj:
        return tuple(_unflatten(v, tensors) for v in obj["__tuple__"])
    raise ValueError(f"unknown entry {sorted(obj)[:3]}")


# --------------------------------------------------------------------------------------------
# Random state
# --------------------------------------------------------------------------------------------


def capture_rng() -> dict[str, Any]:
    """The state of every random generator training touches."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # Windows cannot open folders; rename is still atomic there
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def step_folder(root: Path, step: int) -> Path:
    return Path(root) / f"step_{step:08d}"


def save_checkpoint(root: str | Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``state`` as checkpoint ``root/step_XXXXXXXX`` atomically; keep the ``keep``
    newest checkpoints in ``root`` (0 keeps all). Returns the checkpoint folder."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    body = _flatten(state, tensors)
    final = step_folder(root, step)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        tensor_path = tmp / TENSORS_FILE
        with writing(final / TENSORS_FILE):
            _save_tensors(tensors, tensor_path)
        with open(tensor_path, "rb+") as f:
            os.fsync(f.fileno())
        doc = {"kind": CHECKPOINT_KIND, "format_version": CHECKPOINT_FORMAT, "step": int(step),
               "tensors_sha256": _sha256(tensor_path), "state": body}
        atomic_write_json(tmp / STATE_FILE, doc)
        if final.exists():  # a checkpoint of the same step (a resumed run saving again)
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_json(root / LATEST_FILE, {"checkpoint": final.name, "step": int(step)})
    if keep > 0:
        for old in list_checkpoints(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """``save_file``, whose I/O failures (a full disk) are raised as the `OSError` they are
    (safetensors reports them as ``SafetensorError: ... (os error 28)``)."""
    try:
        save_file(tensors, str(path))
    except SafetensorError as exc:
        code = re.search(r"\(os error (\d+)\)", str(exc))
        if code is None:
            raise
        number = int(code.group(1))
        raise OSError(number, os.strerror(number), str(path)) from exc


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoint folders in ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _STEP_DIR.match(p.name) and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(_STEP_DIR.match(p.name).group(1)))  # type: ignore


class DamagedPointerWarning(UserWarning):
    """``latest.json`` is unreadable or names no complete checkpoint."""


def latest_checkpoint(root: str | Path) -> Path | None:
    """The newest checkpoint in ``root`` (``latest.json``, else the highest step), or None.

    A damaged ``latest.json`` is not trusted: the highest complete step is used, and a
    `DamagedPointerWarning` says so (it may be older than the one the pointer meant)."""
    root = Path(root)
    pointer = root / LATEST_FILE
    problem = None
    if pointer.is_file():
        try:
            name = json.loads(pointer.read_text())["checkpoint"]
            if (root / name / STATE_FILE).is_file():
                return root / name
            problem = f"names {name!r}, which is not a complete checkpoint"
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            problem = f"is damaged ({type(exc).__name__}: {exc})"
    found = list_checkpoints(root)
    if problem is not None:
        instead = f"using {found[-1].name}, the newest complete checkpoint found" if found else \
            "no complete checkpoint was found"
        warnings.warn(f"{pointer} {problem}; {instead}", DamagedPointerWarning, stacklevel=2)
    return found[-1] if found else None


def saved_options(path: str | Path) -> dict[str, Any]:
    """The training options checkpoint ``path`` was saved with, from its state.json alone
    (no tensor is read: a check before anything is written)."""
    state_path = Path(path) / STATE_FILE
    try:
        body = json.loads(state_path.read_text())["state"]["__dict__"]["options"]
        return _unflatten(body, {})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(state_path, f"damaged checkpoint state ({type(exc).__name__}: "
                                     f"{exc})") from exc


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The state saved by ``save_checkpoint`` (tensors on the CPU).

    A missing, damaged or foreign checkpoint raises ``InputError`` naming the file."""
    path = Path(path)
    state_path, tensor_path = path / STATE_FILE, path / TENSORS_FILE
    if not path.is_dir():
        raise InputError(path, "checkpoint folder not found")
    try:
        doc = json.loads(state_path.read_text())
    except FileNotFoundError:
        raise InputError(state_path, "missing: not a complete training checkpoint") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(state_path, f"damaged checkpoint state ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("kind") != CHECKPOINT_KIND:
        raise InputError(state_path, "not a training checkpoint of this program")
    if doc.get("format_version") != CHECKPOINT_FORMAT:
        raise FormatVersionError(
            state_path, f"checkpoint format {doc.get('format_version')}, this program reads "
                        f"format {CHECKPOINT_FORMAT}")
    if not tensor_path.is_file():
        raise InputError(tensor_path, "missing: the checkpoint's tensors are gone")
    if _sha256(tensor_path) != doc.get("tensors_sha256"):
        raise InputError(tensor_path, "damaged checkpoint (checksum mismatch); delete this "
                                      "checkpoint folder to resume from the one before")
    try:
        tensors = load_file(str(tensor_path))
        return _unflatten(doc["state"], tensors)
    except Exception as exc:  # safetensors errors, missing keys
        raise InputError(tensor_path, f"damaged checkpoint ({type(exc).__name__}: {exc})") from exc
