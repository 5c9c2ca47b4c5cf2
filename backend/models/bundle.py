"""The model bundle: what training hands to transfer (and the Blender add-on loads).

A bundle is a folder::

    manifest.json                 format version, network configurations, training resolution,
                                  label style, the target's normalization statistics, name,
                                  creation time, backend version, and the training record
                                  (`TrainingRecord`: how it was trained, what transfer must
                                  do the same way)
    generator.safetensors         weights of G (global generator or local enhancer)
    face_generator.safetensors    weights of the face generator (only when it was trained)
    plate.png                     the target's background plate at the training resolution
                                  (only for a G with a matte, which paints the person over it)

Loading never unpickles anything: JSON and safetensors only. Label style and normalization
statistics are plain dicts here, so this module does not depend on the modules that define
them. A manifest must agree with itself (its letterbox record with its resolution, label
style and target size): one that does not is refused on load, since it would draw labels in
one place and frames in another. Training checkpoints (optimizers, step, random state) are a
separate format.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from backend import __version__ as BACKEND_VERSION
from backend.errors import FormatVersionError, InputError
from backend.paths import current_umask
from backend.target.letterbox import Letterbox
from backend.target.window import WindowSpec

from .config import FaceGeneratorConfig, GeneratorConfig
from .networks import FaceGenerator, Generator, GlobalGenerator, LocalEnhancer

# 2: generators with a matte and a plate, and the upsampling choice; version 1 bundles (the
# paper's full-frame generators) read as they are.
BUNDLE_FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
MANIFEST_NAME = "manifest.json"
GENERATOR_FILE = "generator.safetensors"
FACE_GENERATOR_FILE = "face_generator.safetensors"
PLATE_FILE = "plate.png"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


TEMPORAL_NONE = "none"  # the paper's ablation: G never sees a previous frame


@dataclass(frozen=True)
class TrainingRecord:
    """How the bundle was trained: what transfer must do the same way, and where from.

    Bundles of earlier versions wrote this as a free-form dict; every field may therefore be
    missing (None), and keys this version does not know are kept in ``extra``.
    """

    preset: str | None = None
    stage: str | None = None  # the stage whose generator this is
    step: int | None = None
    total_steps: int | None = None
    finished: bool | None = None
    temporal: str = "paper"  # the training's temporal mode; "none": no previous frame
    perceptual: str | None = None  # "vgg" or "none"
    face_box_multiple: int | None = None
    letterbox: Letterbox | None = None  # how the target's frames sat in the canvas
    target_size: tuple[int, int] | None = None  # the target video's (width, height)
    target_fps: float | None = None
    # Where G paints: a window that follows the person (backend/target/window.py); None: the
    # whole canvas (every bundle before the window existed).
    window: WindowSpec | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def uses_previous_frame(self) -> bool:
        """Whether G was trained to see the previous frame (else it always gets zeros)."""
        return self.temporal != TEMPORAL_NONE

    def to_dict(self) -> dict[str, Any]:
        data = {**self.extra, "preset": self.preset, "stage": self.stage, "step": self.step,
                "total_steps": self.total_steps, "finished": self.finished,
                "temporal": self.temporal, "perceptual": self.perceptual,
                "face_box_multiple": self.face_box_multiple,
                "letterbox": None if self.letterbox is None else self.letterbox.to_dict(),
                "target_size": None if self.target_size is None else list(self.target_size),
                "target_fps": self.target_fps,
                "window": None if self.window is None else self.window.to_dict()}
        return {k: v for k, v in data.items() if v is not None}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "TrainingRecord":
        known = {"preset", "stage", "step", "total_steps", "finished", "temporal",
                 "perceptual", "face_box_multiple", "letterbox", "target_size", "target_fps",
                 "window"}

        def get(key: str, kind: type) -> Any:
            return None if data.get(key) is None else kind(data[key])

        size = data.get("target_size")
        return TrainingRecord(
            preset=get("preset", str), stage=get("stage", str), step=get("step", int),
            total_steps=get("total_steps", int), finished=get("finished", bool),
            temporal=str(data.get("temporal") or "paper"), perceptual=get("perceptual", str),
            face_box_multiple=get("face_box_multiple", int),
            letterbox=None if data.get("letterbox") is None
            else Letterbox.from_dict(data["letterbox"]),
            target_size=None if size is None else (int(size[0]), int(size[1])),
            target_fps=get("target_fps", float),
            window=None if data.get("window") is None else WindowSpec.from_dict(data["window"]),
            extra={k: v for k, v in data.items() if k not in known})


@dataclass
class BundleManifest:
    """Everything transfer needs besides the weights. ``resolution`` is (width, height)."""

    name: str
    generator: GeneratorConfig
    resolution: tuple[int, int]
    label_style: dict[str, Any]
    normalization: dict[str, Any]
    face_generator: FaceGeneratorConfig | None = None
    training: TrainingRecord = field(default_factory=TrainingRecord)
    created: str = field(default_factory=_now)
    backend_version: str = BACKEND_VERSION
    format_version: int = BUNDLE_FORMAT_VERSION

    def __post_init__(self) -> None:
        self.resolution = (int(self.resolution[0]), int(self.resolution[1]))
        if isinstance(self.training, dict):
            self.training = TrainingRecord.from_dict(self.training)
        width, height = self.resolution
        multiple = self.generator.size_multiple
        if width <= 0 or height <= 0 or width % multiple or height % multiple:
            raise ValueError(f"training resolution {width}x{height} must be positive multiples "
                             f"of {multiple} for this generator")
        self._check_letterbox()
        self._check_window()

    @property
    def target_size(self) -> tuple[int, int]:
        """The target video's (width, height), from its normalization statistics."""
        size = self.normalization.get("frame_size")
        if size is None and self.training.target_size is not None:
            return self.training.target_size
        if not isinstance(size, (list, tuple)) or len(size) != 2:
            raise ValueError("normalization.frame_size must be [width, height]")
        return (int(size[0]), int(size[1]))

    @property
    def fit(self) -> str:
        return str(self.label_style.get("fit", "letterbox"))

    @property
    def letterbox(self) -> Letterbox:
        """How the target's frame sits in the model's canvas (as training placed it)."""
        return Letterbox.fit_into(self.target_size, self.resolution, self.fit)

    @property
    def generator_size(self) -> tuple[int, int]:
        """(width, height) of G's input: its person window's, or the whole canvas."""
        window = self.training.window
        return self.resolution if window is None else window.size

    def _check_window(self) -> None:
        """A person window needs a matte (the plate is the frame outside it), and G's size
        multiple, inside the canvas."""
        window = self.training.window
        if window is None:
            return
        (w, h), multiple = window.size, self.generator.size_multiple
        if not self.generator.has_matte:
            raise ValueError("training.window: a person window needs a generator with a matte")
        if w % multiple or h % multiple or w > self.resolution[0] or h > self.resolution[1]:
            raise ValueError(f"training.window: {w}x{h} must be multiples of {multiple} "
                             f"within the resolution {self.resolution[0]}x{self.resolution[1]}")

    def _check_letterbox(self) -> None:
        """The training record's letterbox must be the one this manifest implies: the same
        target and fit, in the bundle's canvas. (Earlier versions recorded the prepared
        canvas, twice the resolution for the global stage of a run with a local stage.)"""
        box = self.training.letterbox
        if box is None:
            return
        fit, (w, h) = self.fit, self.resolution
        half_size_stage = self.training.stage == "global" and box.canvas == (2 * w, 2 * h)
        problems = []
        if box.canvas != self.resolution and not half_size_stage:
            problems.append(f"its canvas {box.canvas[0]}x{box.canvas[1]} is not the resolution "
                            f"{w}x{h}")
        if box.fit != fit:
            problems.append(f"its fit {box.fit!r} is not the label style's {fit!r}")
        if self.normalization.get("frame_size") is not None and box.source != self.target_size:
            problems.append(f"its source {box.source[0]}x{box.source[1]} is not the target's "
                            f"{self.target_size[0]}x{self.target_size[1]} "
                            f"(normalization.frame_size)")
        if not problems and box != Letterbox.fit_into(box.source, box.canvas, box.fit):
            problems.append("its scale and offset are not those of its sizes")
        if problems:
            raise ValueError("training.letterbox disagrees with the manifest: "
                             + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "name": self.name,
            "created": self.created,
            "backend_version": self.backend_version,
            "resolution": list(self.resolution),
            "generator": self.generator.to_dict(),
            "face_generator": None if self.face_generator is None
            else self.face_generator.to_dict(),
            "label_style": self.label_style,
            "normalization": self.normalization,
            "training": self.training.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BundleManifest:
        """Parse a manifest; raises ValueError/KeyError/TypeError when it is malformed."""
        known = {"format_version", "name", "created", "backend_version", "resolution",
                 "generator", "face_generator", "label_style", "normalization", "training"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown keys {unknown}")
        for key in ("label_style", "normalization", "training"):
            if not isinstance(data.get(key, {}), dict):
                raise ValueError(f"{key} must be a JSON object")
        face = data.get("face_generator")
        resolution = data["resolution"]
        if not isinstance(resolution, list) or len(resolution) != 2:
            raise ValueError("resolution must be [width, height]")
        return cls(
            name=str(data["name"]),
            generator=GeneratorConfig.from_dict(data["generator"]),
            resolution=(resolution[0], resolution[1]),
            label_style=data["label_style"],
            normalization=data["normalization"],
            face_generator=None if face is None else FaceGeneratorConfig.from_dict(face),
            training=TrainingRecord.from_dict(data.get("training", {})),
            created=str(data["created"]),
            backend_version=str(data["backend_version"]),
            format_version=int(data["format_version"]),
        )


@dataclass
class Bundle:
    """A loaded bundle: networks in eval mode on the requested device."""

    folder: Path
    manifest: BundleManifest
    generator: Generator
    face_generator: FaceGenerator | None
    plate: np.ndarray | None = None  # H x W x 3 uint8 at the resolution, with a matte


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------


def is_bundle(folder: str | Path) -> bool:
    return (Path(folder) / MANIFEST_NAME).is_file()


def _replaceable(folder: Path) -> bool:
    """An existing bundle or an empty folder may be replaced; nothing else."""
    return folder.is_dir() and (is_bundle(folder) or not any(folder.iterdir()))


def _check_network(net: nn.Module, config: object, what: str) -> None:
    if getattr(net, "config", None) != config:
        raise ValueError(f"the {what} was built with {getattr(net, 'config', None)}, "
                         f"but the manifest says {config}")


def _write_weights(net: nn.Module, path: Path, what: str) -> None:
    state = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt", "network": what,
                                          "bundle_format_version": str(BUNDLE_FORMAT_VERSION)})


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def save_bundle(folder: str | Path, manifest: BundleManifest, generator: Generator,
                face_generator: FaceGenerator | None = None,
                plate: np.ndarray | None = None) -> Path:
    """Write a bundle to ``folder`` atomically (``plate``: the background, for a G with a
    matte, at the manifest's resolution).

    Everything is written to a temporary folder next to ``folder`` and renamed into place,
    so readers see the old bundle or the new one, never half of one. An existing bundle at
    ``folder`` is replaced; any other non-empty folder there is left alone (InputError).
    """
    folder = Path(folder)
    _check_network(generator, manifest.generator, "generator")
    if (face_generator is None) != (manifest.face_generator is None):
        raise ValueError("a face generator must be given exactly when the manifest has "
                         "a face_generator configuration")
    if face_generator is not None:
        _check_network(face_generator, manifest.face_generator, "face generator")
    _check_plate(plate, manifest, "the plate given")
    try:
        manifest_text = json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n"
    except (TypeError, ValueError) as err:
        raise ValueError(f"the manifest is not JSON-serialisable: {err}") from err
    if folder.exists() and not _replaceable(folder):
        raise InputError(folder, "exists and is not a model bundle; refusing to replace it")

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
    try:
        _write_weights(generator, tmp / GENERATOR_FILE, "generator")
        if face_generator is not None:
            _write_weights(face_generator, tmp / FACE_GENERATOR_FILE, "face_generator")
        if plate is not None:
            ok, png = cv2.imencode(".png", cv2.cvtColor(plate, cv2.COLOR_RGB2BGR))
            if not ok:
                raise ValueError("OpenCV could not encode the plate as PNG")
            (tmp / PLATE_FILE).write_bytes(png.tobytes())
        (tmp / MANIFEST_NAME).write_text(manifest_text, encoding="utf-8")
        mask = current_umask()
        for path in tmp.iterdir():
            _fsync(path)
            os.chmod(path, 0o666 & ~mask)
        os.chmod(tmp, 0o777 & ~mask)  # mkdtemp makes 0700: a bundle is meant to be shared
        _swap_into_place(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _swap_into_place(new: Path, folder: Path) -> None:
    """Rename ``new`` to ``folder``; an old ``folder`` is moved aside first, restored on failure."""
    if not folder.exists():
        os.rename(new, folder)
        return
    old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".old"))
    os.rmdir(old)  # only the unique name is wanted
    os.rename(folder, old)
    try:
        os.rename(new, folder)
    except BaseException:
        os.rename(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def read_manifest(folder: str | Path) -> BundleManifest:
    """The manifest of the bundle at ``folder``, checked for the format version."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "model bundle folder not found")
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise InputError(path, "missing: this folder is not a model bundle")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(path, f"cannot read the bundle manifest: {err}") from err
    if not isinstance(data, dict):
        raise InputError(path, "the bundle manifest is not a JSON object")
    version = data.get("format_version")
    if version not in READABLE_VERSIONS:
        raise FormatVersionError(
            path, f"model bundle format version {version!r}; this backend "
                  f"({BACKEND_VERSION}) reads versions {', '.join(map(str, READABLE_VERSIONS))}. "
                  f"Re-export the bundle with a matching version of the tool.")
    try:
        return BundleManifest.from_dict(data)
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(path, f"invalid bundle manifest: {type(err).__name__}: {err}") from err


def _load_weights(net: nn.Module, path: Path) -> None:
    """Load ``path`` into ``net`` (built on the meta device) by assignment, strictly."""
    if not path.is_file():
        raise InputError(path, "weights file missing from the model bundle")
    try:
        state = load_file(str(path), device="cpu")
    except Exception as err:  # safetensors reports damage with its own error types
        raise InputError(path, f"corrupt or not a safetensors file: {err}") from err
    # Copy out of the file mapping that safetensors returns: the loaded model must not depend
    # on the file (a bundle re-saved or edited while loaded, folders locked on Windows).
    state = {k: v.to(torch.float32, copy=True) if v.is_floating_point() else v.clone()
             for k, v in state.items()}
    try:
        net.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        detail = "; ".join(line.strip() for line in first[:4])
        raise InputError(path, f"weights do not match the configuration in {MANIFEST_NAME}: "
                               f"{detail}") from err
    if any(t.is_meta for t in [*net.parameters(), *net.buffers()]):
        raise InputError(path, "weights file does not provide every tensor of the network")


def load_bundle(folder: str | Path, device: str | torch.device = "cpu") -> Bundle:
    """Load the bundle at ``folder``: manifest, G and the face generator, in eval mode."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    with torch.device("meta"):  # no memory or random init for weights about to be replaced
        generator: Generator = (LocalEnhancer(manifest.generator)
                                if manifest.generator.n_local_enhancers
                                else GlobalGenerator(manifest.generator))
        face = (None if manifest.face_generator is None
                else FaceGenerator(manifest.face_generator))
    _load_weights(generator, folder / GENERATOR_FILE)
    generator.to(device).eval()
    if face is not None:
        _load_weights(face, folder / FACE_GENERATOR_FILE)
        face.to(device).eval()
    return Bundle(folder, manifest, generator, face, read_plate(folder, manifest))


def read_plate(folder: str | Path, manifest: BundleManifest) -> np.ndarray | None:
    """The bundle's background plate (RGB uint8 at the resolution), None without a matte."""
    if not manifest.generator.has_matte:
        return None
    path = Path(folder) / PLATE_FILE
    data = np.fromfile(str(path), np.uint8) if path.is_file() else None
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data is not None and data.size else None
    if bgr is None:
        raise InputError(path, "missing or unreadable: a generator with a matte paints over "
                               "this background plate")
    plate = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    try:
        _check_plate(plate, manifest, "the plate")
    except ValueError as err:
        raise InputError(path, str(err)) from None
    return plate


def _check_plate(plate: np.ndarray | None, manifest: BundleManifest, what: str) -> None:
    if (plate is None) == manifest.generator.has_matte:
        raise ValueError(f"a plate goes with exactly a generator with a matte ({what})")
    width, height = manifest.resolution
    if plate is not None and plate.shape != (height, width, 3):
        raise ValueError(f"{what} is {plate.shape[1]}x{plate.shape[0]}, not the resolution "
                         f"{width}x{height}")
