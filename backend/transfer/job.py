"""A transfer job: its parameters, and the job folder that makes it resumable.

The job folder (``output_dir``)::

    .lock              held (fcntl.flock) by the process running the job: a second one is
                       refused at once, and the lock dies with its process (`folders`)
    job.json           the job's identity (what makes its frames), the inference backend
                       and the resolved precision that make them, its parameters: written
                       when the job claims the folder, never by progress (a revision
                       records its new identity)
    status.json        progress alone: state, stage, frames, device, stage timings
                       (written atomically; a job resumes the same without it)
    log.txt            what happened, one line per event, appended
    frames/000001.png  one frame per source frame of the range (written atomically, in order):
                       RGB, or RGBA for the "transparent" background (see `layers`)
    layers/000001.png  the person layer (RGBA) of each frame, kept where the frames show it
                       over a background of the user's (a resumed job needs the layer)
    result.mp4         the frames as H.264 at the source's frame rate, with its audio
    side_by_side.mp4   source | label | result (on request)
    poses.npz          the source's poses (detected, gap-filled, smoothed; or the job's ``poses``)
    normalized_poses.npz  the same moved into the target's frame (what the labels show)

Resuming: frames are written one by one under their final name only when complete, so the
frames on disk are always 1..k without a gap. Running the same job again continues at frame
k + 1 (the previous-frame input restored from frame k) and writes the videos again from all
frames.

Revising: the same job with other adjustments (an editor moved a keyframe) keeps the frames
before the first frame whose normalized pose changed, and makes the rest again: each frame
depends only on the poses up to it, so they are the frames a new run would make. A job can
also start from an earlier job's folder (``reuse``): its files are linked into the new,
empty folder first, so the earlier folder stays as it was (an editor's undo shows it). "The same job" means the same *identity*: the source's content, the model's
content, the frame range, the adjustments, the face and method choices and the pose
settings (or the given pose track's content). The device is not part of it (a job may move
to another machine); the precision is not either, but a job continues at the precision that
made its frames (``precision`` in job.json: "auto" continues with it, another one is refused).
A folder holding another job is refused unless ``overwrite`` is set, which discards it;
so is a folder of another kind (a training run, a pose preview) or of the user's own files.
The CPU's inference backend (ONNX Runtime or PyTorch) is not part of the identity either, but
a job continues on the backend that made its frames (``backend`` in job.json; see
`inference`). What a run does with the folder (Start, Resume, Revise, Finished, Restart) is
decided in one place, `job_state.decide`; a job.json whose backend, precision or model
fingerprint is unreadable is refused like an unreadable one (``overwrite`` starts again).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..folders import TRANSFER_JOB_KIND, check_deletable, is_empty, open_append
from ..normalize import Adjustments
from ..oserrors import writing
from ..paths import atomic_write_json
from ..normalize import NormalizationStats
from ..pose.cache import file_identity
from ..pose.pipeline import PoseOptions
from ..video import PngSequenceWriter
from .inference import check_cpu_backend
from .job_state import Action, Decision, Made, OnDisk, Unreadable, read_record

JOB_KIND = TRANSFER_JOB_KIND
JOB_FORMAT_VERSION = 1

JOB_FILE = "job.json"
STATUS_FILE = "status.json"
LOG_FILE = "log.txt"
FRAMES_DIR = "frames"
LAYERS_DIR = "layers"
VIDEO_FILE = "result.mp4"
SIDE_BY_SIDE_FILE = "side_by_side.mp4"
POSES_FILE = "poses.npz"
NORMALIZED_FILE = "normalized_poses.npz"
OWNED = (JOB_FILE, STATUS_FILE, LOG_FILE, FRAMES_DIR, LAYERS_DIR, VIDEO_FILE, SIDE_BY_SIDE_FILE,
         POSES_FILE, NORMALIZED_FILE)  # what a job writes (and ``overwrite`` deletes)


@dataclass
class TransferJob:
    """Make the model's target perform frames [frame_start, frame_stop) of ``source``.

    Made from a checked request by `request.transfer_job` (the command line, the worker and
    the add-on all send a `protocol.Run`). ``adjustments``: per-frame (or constant) user corrections, one value per frame of the
    range. ``method`` "nearest" is the paper's nearest-neighbour baseline: it needs
    ``nearest_run`` (a prepared training run folder); ``model`` is then optional and, when
    given, sets the output resolution and the target statistics.
    """

    source: Path
    model: Path | None
    output_dir: Path
    frame_start: int = 0
    frame_stop: int | None = None
    fps: float | None = None  # frame rate of an image-sequence folder (movies use their own)
    adjustments: Adjustments | None = None
    face: bool = True
    side_by_side: bool = False
    method: str = "generator"
    device: str = "auto"
    precision: str = "auto"
    # On the CPU at fp32: "auto" (ONNX Runtime where installed), "onnx" or "torch"; a job
    # with frames continues on the backend that made them (see `inference`).
    cpu_backend: str = "auto"
    threads: int = 0  # per network operation on the CPU (0: for the cores and the frame size)
    nearest_run: Path | None = None
    pose_options: PoseOptions = field(default_factory=PoseOptions)
    # The source's normalization statistics, instead of those measured on the job's frames
    # (for a short clip whose dancer never comes close or goes far; `python -m backend stats`).
    source_stats: NormalizationStats | None = None
    # The source's poses from a file (a pose track .npz, as `python -m backend poses` writes,
    # of the job's frames or of the whole video) instead of detecting them: for poses made
    # elsewhere (OpenPose) or exactly those a model was trained on (the evaluation).
    poses: Path | None = None
    # What the frames show behind the person (a model with a matte): "target" (its own
    # background plate), "transparent" (RGBA frames) or the path of an image or a video.
    background: str = "target"
    overwrite: bool = False  # discard another job found in output_dir instead of refusing
    # An earlier job folder of this source whose frames may be kept (see "Revising"); used
    # when output_dir is new or empty.
    reuse: Path | None = None

    def __post_init__(self) -> None:
        self.source = Path(self.source)
        self.output_dir = Path(self.output_dir)
        self.model = None if self.model is None else Path(self.model)
        self.nearest_run = None if self.nearest_run is None else Path(self.nearest_run)
        self.poses = None if self.poses is None else Path(self.poses)
        self.reuse = None if self.reuse is None else Path(self.reuse)
        # The request's values are checked once, by `protocol.validate` (see `request`).
        check_cpu_backend(self.cpu_backend)

    def parameters(self) -> dict[str, Any]:
        """Every parameter as plain JSON values (for job.json and the log)."""
        return {
            "source": str(self.source), "model": None if self.model is None else str(self.model),
            "output_dir": str(self.output_dir), "frame_start": self.frame_start,
            "frame_stop": self.frame_stop, "fps": self.fps,
            "adjustments": None if self.adjustments is None else self.adjustments.to_dict(),
            "face": self.face, "side_by_side": self.side_by_side, "method": self.method,
            "device": self.device, "precision": self.precision, "cpu_backend": self.cpu_backend,
            "threads": self.threads,
            "nearest_run": None if self.nearest_run is None else str(self.nearest_run),
            "pose_options": self.pose_options.to_dict(),
            "source_stats": None if self.source_stats is None else self.source_stats.to_dict(),
            "poses": None if self.poses is None else str(self.poses),
            "background": str(self.background),
            "reuse": None if self.reuse is None else str(self.reuse),
        }


@dataclass
class TransferResult:
    frames_dir: Path
    frame_count: int
    video: Path | None
    side_by_side: Path | None
    warnings: list[str] = field(default_factory=list)  # e.g. the source never shows its ankles


def bundle_identity(folder: str | Path) -> str:
    """A content hash of a model bundle: its manifest, (sampled) weight files and plate."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file() and (path.name in ("manifest.json", "plate.png")
                               or path.suffix == ".safetensors"):
            digest.update(f"{path.name}={file_identity(path)};".encode())
    return digest.hexdigest()


class JobFolder:
    """The files of one job folder (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.frames_dir = self.root / FRAMES_DIR
        self.layers_dir = self.root / LAYERS_DIR
        self.job_file = self.root / JOB_FILE
        self.status_file = self.root / STATUS_FILE
        self.log_file = self.root / LOG_FILE
        self.video = self.root / VIDEO_FILE
        self.side_by_side = self.root / SIDE_BY_SIDE_FILE
        self.poses = self.root / POSES_FILE
        self.normalized = self.root / NORMALIZED_FILE

    def read_disk(self, frames: int, wanted: list[Path]) -> OnDisk:
        """What the folder holds now (read under its lock, see `job_state`): ``frames`` the
        complete frames, ``wanted`` the videos a complete job of this run has."""
        job, status = self.read_job(), self.read_status()
        record = job if isinstance(job, Unreadable) else read_record(job, status)
        complete = bool(frames) and status.get("state") == "done" \
            and status.get("frame_count") == frames and all(p.is_file() for p in wanted)
        return OnDisk(self.root, record, frames, complete)

    def apply(self, decision: Decision, identity: dict[str, Any],
              parameters: dict[str, Any], made: Made) -> None:
        """Make the folder ready for ``decision``: discard another job (RESTART), record
        this one (START, RESTART), remove what a killed run left half-written."""
        if decision.action is Action.RESTART:
            self.discard()
        self.frames_dir.mkdir(parents=True, exist_ok=True)
        if decision.action in (Action.START, Action.RESTART):
            self.record(identity, parameters, made)
        self.remove_partial_files()

    def seed_from(self, earlier: str | Path) -> bool:
        """Link (or copy) an earlier job folder's job, poses and frames into this folder when
        it is new or empty and ``earlier`` holds a job; True when it did. Frames are later
        replaced by renaming, never written through a link, so ``earlier`` stays as it was."""
        source = JobFolder(earlier)
        if (self.root.is_dir() and not is_empty(self.root)) or not isinstance(source.read_job(),
                                                                                dict):
            return False
        kept = [(source.job_file, self.job_file), (source.status_file, self.status_file),
                (source.poses, self.poses), (source.normalized, self.normalized)]
        for src_dir, dst_dir in ((source.frames_dir, self.frames_dir),
                                 (source.layers_dir, self.layers_dir)):
            if src_dir.is_dir():
                kept += [(p, dst_dir / p.name) for p in src_dir.glob("*.png")]
        for src, dst in kept:
            if src.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                _link_or_copy(src, dst)
        return True

    def record(self, identity: dict[str, Any], parameters: dict[str, Any], made: Made) -> None:
        """Write job.json: the folder now holds the job with ``identity``, whose frames
        ``made.backend`` makes at ``made.precision`` (written when the job claims the folder,
        never by progress)."""
        atomic_write_json(self.job_file, {
            "kind": JOB_KIND, "format_version": JOB_FORMAT_VERSION, "identity": identity,
            "backend": made.backend, "precision": made.precision, "parameters": parameters,
            "created": _now()})

    def read_job(self) -> dict[str, Any] | Unreadable | None:
        """job.json, or None when there is none, or `Unreadable` saying why it is not usable."""
        if not self.job_file.is_file():
            return None
        try:
            data = json.loads(self.job_file.read_text())
        except (OSError, ValueError):
            return Unreadable("its job.json is unreadable")
        if not isinstance(data, dict) or data.get("kind") != JOB_KIND \
                or data.get("format_version") != JOB_FORMAT_VERSION:
            return Unreadable("its job.json is of another version")
        return data

    def discard(self) -> None:
        """Delete this folder's job files (only those; anything else in it stays). Each is
        checked first, so that a job is deleted whole or not at all."""
        for name in OWNED:
            check_deletable(self.root / name)
        for name in OWNED:
            path = self.root / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    def remove_partial_files(self) -> None:
        """Temporary files a killed run left behind (hidden, named ``.NAME.*``)."""
        for folder in (self.root, self.frames_dir):
            for path in folder.glob(".*"):
                if path.is_file() and (path.suffix in (".tmp", ".part")):
                    path.unlink(missing_ok=True)

    def frame_writer(self) -> PngSequenceWriter:
        return PngSequenceWriter(self.frames_dir)

    def layer_writer(self) -> PngSequenceWriter:
        return PngSequenceWriter(self.layers_dir)

    def frames_done(self, layers: bool = False) -> int:
        """How many frames are complete, from the first on without a gap (with ``layers``:
        frames whose layer is complete too)."""
        done = self.frame_writer().count_existing()
        return min(done, self.layer_writer().count_existing()) if layers else done

    def frame_path(self, index: int) -> Path:
        """The PNG of frame ``index`` of the range (0-based)."""
        return self.frame_writer().path_for(index + 1)

    def layer_path(self, index: int) -> Path:
        return self.layer_writer().path_for(index + 1)

    def remove_frames_from(self, index: int) -> None:
        """Delete frames (and layers) ``index`` and later (0-based): stray files past a gap
        or past a frame without its layer."""
        for folder in (self.frames_dir, self.layers_dir):
            for path in folder.glob("*.png") if folder.is_dir() else ():
                if path.stem.isdigit() and int(path.stem) >= index + 1:
                    path.unlink()

    def read_status(self) -> dict[str, Any]:
        try:
            data = json.loads(self.status_file.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def write_status(self, status: dict[str, Any]) -> None:
        atomic_write_json(self.status_file, {**status, "updated": _now()})

    def log(self, message: str) -> None:
        with writing(self.log_file), open_append(self.log_file) as f:
            f.write(f"{_now()} {message}\n")
            f.flush()
            os.fsync(f.fileno())


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(src, dst)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
