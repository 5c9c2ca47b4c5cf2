"""What the evaluation compares, and how each one's frames are made: by the transfer itself.

Every method draws the held-out frames through ``backend.transfer.run_transfer``, the code an
editor runs, with the held-out poses given as the job's poses (so nothing is detected again)
and the target's own statistics as the source's (so normalization leaves them where they
are). Each method's job folder lives in the report folder: an interrupted evaluation
continues where it stopped, and a finished one is not redone.

The methods (the rows of the paper's tables):

* ``nearest neighbour``: the paper's baseline, the training frame with the closest pose;
* the model (``ours``), and the same model without its face GAN when it has one (the face
  stage trains only the face generator, so this *is* the model before that stage);
* further bundles given by the user, e.g. one trained without temporal smoothing, each also
  without its face GAN when it has one. A bundle of the same target at another resolution
  (a small model) draws at its own size, and its frames are resized (bicubic) to the
  evaluated size: what an editor gets by blowing it up; its rows say so.

A model with a matte draws the person alone (its job's background is "transparent"): its
frames are scored over the plate (`composite_frames`, exactly the frames a default job
writes), and its alpha is compared with the person's masks (`matte_iou`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from backend.errors import InputError
from backend.models.bundle import read_manifest, read_plate
from backend.normalize import NormalizationStats
from backend.transfer import TransferJob, run_transfer
from backend.transfer.layers import TRANSPARENT, Layer
from backend.video import PngSequenceWriter
from backend.video.images import list_images, read_image

from .heldout_set import HeldOutSet

MATTE_THRESHOLD = 128  # alpha (8-bit) and mask (x 255) values from which a pixel is the person's


@dataclass(frozen=True)
class Method:
    """One row of the report: ``name`` and the transfer job that draws its frames."""

    name: str
    bundle: Path | None  # None: the nearest-neighbour baseline
    face: bool = True
    upscaled: bool = False  # drawn at the bundle's own (smaller) resolution, then resized

    @property
    def matte(self) -> bool:
        return self.bundle is not None and read_manifest(self.bundle).generator.has_matte

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_") or "method"


def standard_methods(bundle: Path, baseline: bool, compare: list[tuple[str, Path]]) -> list[Method]:
    """The baseline, the model and the given bundles, each also without its face GAN; a
    bundle at another resolution than the model's is upscaled (its rows say from what)."""
    methods = [Method("nearest neighbour", None)] if baseline else []
    resolution = read_manifest(bundle).resolution
    for name, path in [("ours", bundle), *compare]:
        manifest = read_manifest(path)
        upscaled = manifest.resolution != resolution
        if upscaled:
            name = f"{name} ({manifest.resolution[0]}x{manifest.resolution[1]}, upscaled bicubic)"
        methods.append(Method(name, path, upscaled=upscaled))
        if manifest.face_generator is not None:
            methods.append(Method(f"{name}, no face GAN", path, face=False, upscaled=upscaled))
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise ValueError(f"two methods share a name: {names}")
    return methods


def check_bundle(path: Path, resolution: tuple[int, int], held_out: HeldOutSet) -> None:
    """A compared bundle must draw the same target in a canvas of the same shape (at the
    evaluated resolution, or at another one whose frames are resized to it)."""
    manifest = read_manifest(path)
    (w, h), (rw, rh) = manifest.resolution, resolution
    if w * rh != h * rw:
        raise InputError(path, f"draws {w}x{h} frames, not of the shape of the evaluated "
                               f"model's {rw}x{rh}: the metrics would not be comparable")
    size = tuple(NormalizationStats.from_dict(manifest.normalization).frame_size)
    if size != tuple(held_out.poses.size):
        raise InputError(path, f"is a model of a {size[0]}x{size[1]} video, not of "
                               f"{held_out.video} ({held_out.poses.size[0]}x"
                               f"{held_out.poses.size[1]})")


def job_for(method: Method, held_out: HeldOutSet, model: Path, poses: Path, folder: Path,
            device: str, cpu_backend: str) -> TransferJob:
    """The transfer job drawing ``method``'s frames of the held-out set into ``folder``.
    ``model`` sets the target statistics and resolution of the baseline too."""
    stats = NormalizationStats.from_dict(read_manifest(model).normalization)
    return TransferJob(
        source=held_out.video, model=method.bundle or model, output_dir=folder,
        frame_start=held_out.first, frame_stop=held_out.stop, face=method.face,
        method="generator" if method.bundle is not None else "nearest",
        nearest_run=held_out.run.folder.parent if method.bundle is None else None,
        device=device, cpu_backend=cpu_backend, source_stats=stats, poses=poses,
        background=TRANSPARENT if method.matte else "target")


def make_frames(method: Method, held_out: HeldOutSet, model: Path, poses: Path, folder: Path,
                device: str = "auto", cpu_backend: str = "auto", progress: bool = True) -> Path:
    """Draw (or finish drawing) ``method``'s held-out frames; returns their folder."""
    job = job_for(method, held_out, model, poses, folder, device, cpu_backend)
    return run_transfer(job, progress=progress).frames_dir


def upscale_frames(frames: Path, size: tuple[int, int], folder: Path, alpha: bool = False) -> Path:
    """``frames`` (RGB PNGs, or RGBA with ``alpha``) resized to ``size`` (bicubic), as PNGs
    in ``folder`` (a rerun keeps those already made)."""
    writer = PngSequenceWriter(folder)
    done = writer.resume()
    for i, path in enumerate(list_images(frames)):
        if i >= done:
            image = read_image(path, alpha=alpha)
            writer.write(np.ascontiguousarray(
                cv2.resize(image, tuple(size), interpolation=cv2.INTER_CUBIC)))
    return folder


def composite_frames(method: Method, held_out: HeldOutSet, layers: Path, folder: Path) -> Path:
    """A matte method's RGBA frames over its plate, as PNGs in ``folder`` (the frames a job
    with the default background writes; a rerun keeps those already made)."""
    assert method.bundle is not None
    manifest = read_manifest(method.bundle)  # its own canvas: an upscaled method's is smaller
    plate = manifest.letterbox.crop(read_plate(method.bundle, manifest))
    writer = PngSequenceWriter(folder)
    done = writer.resume()
    for i, path in enumerate(list_images(layers)):
        if i >= done:
            writer.write(Layer.from_rgba(read_image(path, alpha=True)).over(plate))
    return folder


def matte_iou(layers: Path, held_out: HeldOutSet) -> float:
    """The mean over the held-out frames of the IoU of the thresholded alpha with the
    thresholded person mask (frames where both are empty count 1)."""
    scores = []
    for path, mask in zip(list_images(layers), held_out.masks()):
        alpha = read_image(path, alpha=True)[..., 3] >= MATTE_THRESHOLD
        person = mask * 255 >= MATTE_THRESHOLD
        union = np.logical_or(alpha, person).sum()
        scores.append(1.0 if union == 0 else float(np.logical_and(alpha, person).sum() / union))
    return round(float(np.mean(scores)), 4)
