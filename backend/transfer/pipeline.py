"""The transfer pipeline (stage 6): a source video in, the target performing its dance out.

    source frames -> poses (detect, cached; fill gaps; smooth)          `plan`, one pass
                  -> normalized onto the target (+ user adjustments)    `plan`
                  -> labels at the training resolution, letterboxed     reader thread
                  -> G(label, previous frame) + face residual           this thread
                     (PyTorch, or ONNX Runtime on the CPU: `inference`)
                  -> frames/NNNNNN.png, result.mp4 [, side_by_side.mp4] writer thread

``run_transfer`` does it all for one `TransferJob` in a resumable job folder (see `job`).
Labels are drawn (and, for the side-by-side video, source frames decoded) a few frames ahead
in one thread, results encoded a few frames behind in another, so on a GPU the generator
does not wait for OpenCV or the encoders; queues are bounded, so memory stays flat.

Cancelling (``cancel`` set, Ctrl-C on the command line) stops after the frame in hand: the
frames made so far are written, the videos discarded, the status says "cancelled", and the
same job run again continues where it stopped.

The log and status.json say which backend ran the networks and how long each stage's own
work took (``timings``: poses, labels, generate, write; the last three overlap in their
threads, so their sum exceeds the run's time and the slowest one sets the pace).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BackendError, Cancelled, InputError
from ..labels import LabelStyle, render_label
from ..models.bundle import Bundle, BundleManifest, read_manifest
from ..normalize import NormalizationStats
from ..pose.cache import file_identity, video_identity
from ..pose.track import PoseTrack
from ..progress import progress_bar
from ..video import VideoInfo, probe, read_frames
from ..video.images import read_image
from .canvas import CanvasLayout, box_of
from .device import Runtime
from .generate import FrameGenerator
from .inference import (BACKEND_NAMES, BackendConflict, GivenBundle, LoadEachTime, ModelSource,
                        Networks, choose_backend, describe_backend, load_networks)
from .job import JobFolder, TransferJob, TransferResult, bundle_identity
from .nearest import NearestRenderer, TargetFrames
from .outputs import OutputFrame, Outputs, VideoSettings
from .plan import FramePlan, given_track, plan_frames, saved_track
from .streams import BackgroundSink, Prefetch

Report = Callable[[str, int, int], None]
STATUS_INTERVAL_S = 1.0  # status.json is rewritten at most this often while frames are made
QUEUE_DEPTH = 4


@dataclass
class Target:
    """What the job draws: the target's statistics, label style, canvas, and the renderer's inputs."""

    stats: NormalizationStats
    style: LabelStyle
    resolution: tuple[int, int]
    identity: dict
    manifest: BundleManifest | None = None  # the model bundle's (None: nearest without one)
    frames: TargetFrames | None = None  # the nearest-neighbour baseline
    face_multiple: int = 8
    networks: Networks | None = None  # the generator method's, once loaded
    backend: str | None = None  # "onnx" or "torch" (the generator method)

    @property
    def layout(self) -> CanvasLayout:
        return CanvasLayout(self.stats.frame_size, self.resolution, self.style.fit)


def run_transfer(job: TransferJob, report: Report | None = None,
                 cancel: threading.Event | None = None, bundle: Bundle | None = None,
                 progress: bool = False, models: ModelSource | None = None) -> TransferResult:
    """Run ``job`` (or continue it) and return where its frames and videos are.

    ``report(stage, done, total)`` is called as work advances (stages "poses", "generate",
    "finish"); ``cancel`` set makes it raise `Cancelled`, leaving a resumable folder;
    ``bundle`` is a model already loaded (it is moved to the job's device, or on the CPU
    exported to ONNX Runtime when that backend runs); ``models`` is where networks come from
    instead (a worker passes its model cache, so the next job with the same bundle loads
    nothing; see `inference.ModelSource`); ``progress`` shows bars on stderr.
    """
    cancel = cancel or threading.Event()
    info = probe(job.source, job.fps)
    start, stop = frame_range(job, info)
    n = stop - start
    given = (given_track(job.poses, job.source, info.frame_count, info.size, start, stop)
             if job.poses is not None else None)
    check_adjustments(job, n)
    runtime = Runtime.resolve(job.device, job.precision)
    target = load_target(job, bundle)
    identity = job_identity(job, info, start, stop, target)
    recorded = JobFolder(job.output_dir).recorded_backend(identity)
    restart = choose_target_backend(job, runtime, target, recorded)
    began = time.perf_counter()
    if target.manifest is not None and job.method == "generator":
        source = models or (GivenBundle(bundle) if bundle is not None else LoadEachTime())
        target.networks = load_networks(source, job.model, runtime, target.backend)
    load_seconds = time.perf_counter() - began  # ONNX Runtime's sessions take a while to make
    folder, resumed = JobFolder.claim(job.output_dir, job.parameters(), identity, job.overwrite,
                                      start_again=restart)
    if resumed and given is None:
        given = saved_track(folder.poses, n)  # the poses its first frames were made from
    result = TransferResult(folder.frames_dir, n, folder.video,
                            folder.side_by_side if job.side_by_side else None)
    done = folder.frames_done()
    folder.remove_frames_from(done)
    if is_finished(folder, job, n, done):
        result.warnings = list(folder.read_status().get("warnings", []))
        return result
    times = StageTimes()
    status = StatusWriter(folder, {
        "state": "running", "stage": "poses", "done": 0, "total": n, "frame_count": n,
        "frames_written": done, "resumed_from": done if resumed else None,
        "device": runtime.describe(), "backend": target.backend, "method": job.method,
        "load_seconds": round(load_seconds, 3), "warnings": []})
    folder.log(f"{'resumed at frame ' + str(done + 1) if resumed else 'started'}: "
               f"{job.method}, frames {start}..{stop - 1} of {job.source}, on {runtime.describe()}"
               + (f" with {describe_backend(target.backend, target.networks)}; networks ready "
                  f"in {load_seconds:.1f} s" if target.backend else ""))
    if recorded is not None and recorded != target.backend and done:
        folder.log(f"note: frames 1..{done} were made with {BACKEND_NAMES[recorded]}; on "
                   f"{runtime.device.type} this run continues with "
                   f"{BACKEND_NAMES[str(target.backend)]}, so frames from {done + 1} on may "
                   f"differ slightly from an uninterrupted run")
    try:
        plan = make_plan(job, target, start, stop, folder, status, report, cancel, progress,
                         times, given)
        result.warnings = plan.warnings
        generate(job, target, runtime, plan, folder, info, start, done, status, report, cancel,
                 progress, times)
    except (Cancelled, KeyboardInterrupt) as exc:
        written = folder.frames_done()
        status.set(force=True, state="cancelled", frames_written=written, timings=times.to_dict(),
                   message=f"cancelled after {written} of {n} frames; run the job again to continue")
        folder.log(f"cancelled with {written} of {n} frames written")
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise Cancelled(f"{folder.root}: cancelled after {written} of {n} frames; run the same "
                        f"job again to continue") from None
    except BaseException as exc:
        status.set(force=True, state="failed", frames_written=folder.frames_done(),
                   message=str(exc) or type(exc).__name__)
        folder.log(f"failed: {type(exc).__name__}: {exc}")
        raise
    status.set(force=True, state="done", stage="finish", done=n, frames_written=n,
               timings=times.to_dict(), message=f"{n} frames")
    folder.log(f"done: {n} frames, {folder.video.name}"
               + (f", {folder.side_by_side.name}" if job.side_by_side else ""))
    if report is not None:
        report("finish", 1, 1)
    return result


# -- setting up -------------------------------------------------------------------------------


def frame_range(job: TransferJob, info: VideoInfo) -> tuple[int, int]:
    """[start, stop) of the job within the source (stop clamped to its end, as slicing)."""
    stop = info.frame_count if job.frame_stop is None else min(job.frame_stop, info.frame_count)
    if not job.frame_start < stop:
        raise InputError(job.source, f"frame range [{job.frame_start}, {stop}) is empty: the "
                                     f"video has {info.frame_count} frames")
    return job.frame_start, stop


def check_adjustments(job: TransferJob, n: int) -> None:
    if job.adjustments is not None and job.adjustments.n_frames not in (None, n):
        raise BackendError(f"the adjustments have {job.adjustments.n_frames} values per field "
                           f"but the job has {n} frames ({job.frame_start}..{job.frame_start + n - 1})")


def load_target(job: TransferJob, bundle: Bundle | None) -> Target:
    """The target's statistics, label style and canvas: from the model bundle's manifest
    and/or the prepared target frames (the networks are loaded later, see `run_transfer`)."""
    frames = TargetFrames.open(job.nearest_run) if job.method == "nearest" else None
    manifest = bundle.manifest if bundle is not None else (
        read_manifest(job.model) if job.model is not None else None)
    folder: Path | None = bundle.folder if bundle is not None else job.model
    if manifest is not None:
        assert folder is not None
        where = folder / "manifest.json"
        stats_data, style_data, resolution = (manifest.normalization, manifest.label_style,
                                              manifest.resolution)
    else:
        assert frames is not None
        where = frames.folder / "normalization.json"
        stats_data, style_data, resolution = (frames.normalization(), frames.label_style(),
                                              frames.canvas)
    try:
        stats = NormalizationStats.from_dict(stats_data)
        style = LabelStyle.from_dict(style_data)
    except (TypeError, ValueError) as exc:
        raise InputError(where, f"unusable target statistics or label style ({exc})") from exc
    face_multiple = (manifest.face_generator.size_multiple
                     if manifest is not None and manifest.face_generator is not None else 8)
    identity = {"model": None if folder is None else bundle_identity(folder),
                "target_frames": None if frames is None else frames.fingerprint}
    return Target(stats, style, tuple(resolution), identity, manifest, frames, face_multiple)


def choose_target_backend(job: TransferJob, runtime: Runtime, target: Target,
                          recorded: str | None) -> bool:
    """Set ``target.backend`` (generator method; see `inference`); True when the job folder's
    frames, made by another backend, are to be discarded (``overwrite``)."""
    if job.method != "generator":
        return False
    try:
        target.backend = choose_backend(job.cpu_backend, runtime, recorded)
        return False
    except BackendConflict as exc:
        if not job.overwrite:
            raise InputError(job.output_dir, str(exc)) from None
    target.backend = choose_backend(job.cpu_backend, runtime, None)
    return True


def job_identity(job: TransferJob, info: VideoInfo, start: int, stop: int, target: Target) -> dict:
    """What decides the job's frames (see `job`), as plain JSON values."""
    uses_face = bool(job.face and job.method == "generator" and target.manifest is not None
                     and target.manifest.face_generator is not None)
    identity = {
        "source": video_identity(job.source), "range": [start, stop], "fps": info.fps,
        "method": job.method, **target.identity, "face": uses_face,
        "resolution": list(target.resolution),
        "adjustments": None if job.adjustments is None else job.adjustments.to_dict(),
        "poses": job.pose_options.to_dict() if job.poses is None else None,
        "pose_track": None if job.poses is None else file_identity(job.poses),
        "source_stats": None if job.source_stats is None else job.source_stats.to_dict(),
    }
    return json.loads(json.dumps(identity))  # as it reads back from job.json


def is_finished(folder: JobFolder, job: TransferJob, n: int, done: int) -> bool:
    """A completed run of this job whose requested videos all exist: nothing to do."""
    wanted = [folder.video] + ([folder.side_by_side] if job.side_by_side else [])
    return (done == n and folder.read_status().get("state") == "done"
            and all(p.is_file() for p in wanted))


class StatusWriter:
    """status.json: the fields so far, rewritten atomically (at most once a second unless forced)."""

    def __init__(self, folder: JobFolder, fields: dict) -> None:
        self.folder = folder
        self.fields = dict(fields)
        self.last = 0.0
        self.set(force=True)

    def set(self, force: bool = False, **fields) -> None:
        self.fields.update(fields)
        now = time.monotonic()
        if force or now - self.last >= STATUS_INTERVAL_S:
            self.folder.write_status(self.fields)
            self.last = now


class StageTimes:
    """Wall-clock seconds each stage spent on its own work, and the frames it did.

    Stages "labels", "generate" and "write" run in three threads at once, so each one's
    seconds count only the time inside its own calls; frames / seconds is the rate at which
    that stage alone could go. Thread-safe: each stage is timed from one thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds: dict[str, float] = {}
        self._frames: dict[str, int] = {}

    def add(self, stage: str, seconds: float, frames: int = 1) -> None:
        with self._lock:
            self._seconds[stage] = self._seconds.get(stage, 0.0) + seconds
            self._frames[stage] = self._frames.get(stage, 0) + frames

    @contextmanager
    def timing(self, stage: str, frames: int = 1) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - began, frames)

    def to_dict(self) -> dict[str, dict[str, float]]:
        """{stage: {"frames", "seconds", "fps"}} (for status.json)."""
        with self._lock:
            return {stage: {"frames": self._frames[stage], "seconds": round(seconds, 4),
                            "fps": round(self._frames[stage] / max(seconds, 1e-9), 3)}
                    for stage, seconds in self._seconds.items()}

    def describe(self) -> str:
        return ", ".join(f"{stage} {t['fps']:.2f} fps" for stage, t in self.to_dict().items())


def _reporter(report: Report | None, stage: str, status: StatusWriter):
    def call(done: int, total: int) -> None:
        status.set(stage=stage, done=done, total=total)
        if report is not None:
            report(stage, done, total)
    return call


# -- the two passes ---------------------------------------------------------------------------


def make_plan(job: TransferJob, target: Target, start: int, stop: int, folder: JobFolder,
              status: StatusWriter, report: Report | None, cancel: threading.Event,
              progress: bool, times: StageTimes, given: PoseTrack | None) -> FramePlan:
    """The pose pass (see `plan`; ``given``: the job's own pose track); saves the source's
    and the normalized poses in the folder."""
    began = time.perf_counter()
    plan = plan_frames(job.source, start, stop, job.fps, job.pose_options, target.stats,
                       job.adjustments, target.layout, target.face_multiple, job.source_stats,
                       _reporter(report, "poses", status), cancel, progress, given)
    seconds = time.perf_counter() - began
    times.add("poses", seconds, len(plan.source))
    plan.source.save(folder.poses)
    plan.normalized.save(folder.normalized)
    status.set(force=True, warnings=plan.warnings)
    folder.log(f"poses: {len(plan.source)} frames in {seconds:.1f} s, subject found in "
               f"{int(plan.source.detected.sum())}")
    for message in plan.warnings:
        folder.log(f"warning: {message}")
    return plan


@dataclass
class FrameInputs:
    written: np.ndarray | None  # the frame already on disk (a resumed job)
    label: np.ndarray | None  # the label canvas
    source: np.ndarray | None  # the source frame (side-by-side only)


def frame_inputs(job: TransferJob, target: Target, plan: FramePlan, folder: JobFolder,
                 start: int, done: int, labels_from: int,
                 times: StageTimes) -> Iterator[FrameInputs]:
    """Per frame: the PNG already written (before ``done``), the label (from ``labels_from``)
    and the source frame (for the side-by-side video)."""
    n = len(plan.normalized)
    sources = read_frames(job.source, start, start + n, job.fps) if job.side_by_side else None
    try:
        for i in range(n):
            written = read_image(folder.frame_path(i)) if i < done else None
            label = None
            if i >= labels_from:
                with times.timing("labels"):
                    label = render_label(plan.normalized.frame(i), plan.normalized.size,
                                         target.resolution, target.style)
            source = next(sources) if sources is not None else None
            yield FrameInputs(written, label, source)
    finally:
        if sources is not None:
            sources.close()


def make_renderer(job: TransferJob, target: Target, runtime: Runtime, plan: FramePlan):
    """(render(i, label) -> frame, restore(last written frame)) for the job's method."""
    if target.frames is not None:
        nearest = NearestRenderer(target.frames, plan.normalized, target.layout)
        return (lambda i, label: nearest(i)), (lambda frame: None)
    assert target.networks is not None
    generator = FrameGenerator(target.networks, runtime, target.layout, face=job.face)
    return (lambda i, label: generator(label, box_of(plan.boxes, i))), generator.reset


def generate(job: TransferJob, target: Target, runtime: Runtime, plan: FramePlan,
             folder: JobFolder, info: VideoInfo, start: int, done: int, status: StatusWriter,
             report: Report | None, cancel: threading.Event, progress: bool,
             times: StageTimes) -> None:
    """Make frames ``done``.. of the range and write every frame's outputs (see the module)."""
    n = len(plan.normalized)
    render, restore = make_renderer(job, target, runtime, plan)
    restore(None)
    layout = target.layout
    labels_from = 0 if job.side_by_side else (done if target.networks is not None else n)
    settings = VideoSettings(
        fps=info.frame_rate, frame_size=layout.content, source_size=info.size,
        audio_from=info.path if info.has_audio else None, audio_start_s=start / info.fps)
    began, made = time.monotonic(), 0
    status.set(force=True, stage="generate", done=0, total=n)
    with Outputs(folder.frame_writer(), folder.video, settings,
                 folder.side_by_side if job.side_by_side else None) as outputs:
        outputs.pngs.resume()

        def write(out: OutputFrame) -> None:
            with times.timing("write"):
                outputs.write(out)

        sink = BackgroundSink(write, QUEUE_DEPTH, "transfer-outputs")
        inputs = Prefetch(frame_inputs(job, target, plan, folder, start, done, labels_from, times),
                          QUEUE_DEPTH, "transfer-inputs")
        failed = True
        try:
            counted = progress_bar(inputs, n, "transfer", progress,
                                   _reporter(report, "generate", status))
            for i, item in enumerate(counted):
                if cancel.is_set():
                    raise Cancelled("cancelled")
                if item.written is not None:
                    frame = item.written
                    if i == done - 1:
                        restore(frame)  # the previous-frame input of the first new frame
                else:
                    with times.timing("generate"):
                        frame = render(i, item.label)
                    made += 1
                label = None if item.label is None else layout.crop(item.label)
                sink.put(OutputFrame(i, frame, i >= done, label, item.source))
            failed = False
        finally:
            inputs.close()
            _close(sink, quietly=failed)
        if report is not None:
            report("finish", 0, 1)
    seconds = time.monotonic() - began
    folder.log(f"generate: {made} new frames in {seconds:.1f} s "
               f"({made / max(seconds, 1e-9):.2f} fps), {done} written before; each stage "
               f"alone: {times.describe()}")
    written = folder.frames_done()
    if written != n or folder.frame_path(n).exists():
        raise RuntimeError(f"{folder.frames_dir}: {written} frames after the run, expected {n}")


def _close(sink: BackgroundSink, quietly: bool) -> None:
    """Finish writing what was queued; when the loop failed, its error is the one to raise."""
    if not quietly:
        sink.close()
        return
    try:
        sink.close()
    except BaseException:
        pass
