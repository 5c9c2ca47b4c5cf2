"""The transfer pipeline (stage 6): a source video in, the target performing its dance out.

    source frames -> poses (detect, cached; fill gaps; smooth)          `plan`, one pass
                  -> normalized onto the target (+ user adjustments)    `plan`
                  -> labels at the training resolution, letterboxed     `frame_loop`,
                  -> G(label, previous frame) + face residual              in three
                     (PyTorch, or ONNX Runtime on the CPU: `inference`)    threads
                  -> frames/NNNNNN.png, result.mp4 [, side_by_side.mp4]

``run_transfer`` does it all for one `TransferJob` in a resumable job folder (see `job`):
it builds a `TransferRun` once from the job (the source's range, the runtime, the target,
the networks, the claimed folder) and runs it: the pose pass, then the frames
(`frame_loop.FrameLoop`: labels drawn a few frames ahead in one thread, results encoded a few
frames behind in another, so on a GPU the generator does not wait for OpenCV or the
encoders; queues are bounded, so memory stays flat).

Cancelling (``cancel`` set, Ctrl-C on the command line) stops after the frame in hand: the
frames made so far are written, the videos discarded, the status says "cancelled", and the
same job run again continues where it stopped.

The log says which backend ran the networks (job.json records it) and status.json how long
each stage's own work took (``timings``: poses, labels, generate, write; the last three
overlap in their threads, so their sum exceeds the run's time and the slowest one sets the
pace; ``frames_wall`` is the wall time of the three together).

Why detection does not run ahead of generation: the pose pass must end before the first
frame is drawn, because normalization (paper appendix 8.5) places every frame with the
source's statistics over the whole range (its closest and farthest ankle positions and body
heights), which the last frame can change. What overlaps is everything after it: labels,
the networks and the encoders, in three threads. The pose pass itself is cached per video
(a preview fills the cache, so the editor's retarget skips it) and runs in several processes
on a long video (see backend/pose).
"""

from __future__ import annotations

import threading
import time
from contextlib import suppress
from dataclasses import replace
from pathlib import Path

from ..errors import BackendError, JobCancelled, InputError, NoSpaceError
from ..folders import FolderLock
from ..models.bundle import Bundle
from ..pose.track import PoseTrack
from ..runtime import use_cpu_threads
from ..video import probe
from .frame_loop import FrameLoop
from .inference import (BACKEND_NAMES, GivenBundle, LoadEachTime, ModelSource, Networks,
                        describe_backend, load_networks)
from .job import OWNED, JobFolder, TransferJob, TransferResult
from .job_setup import check_adjustments, choose_runtime, job_identity, load_target
from .job_state import Action, Made, check_claimable, decide
from .layers import TARGET
from .plan import (FramePlan, PosePlacement, SourceRange, Watch, first_change, frame_range,
                   given_track, plan_frames, saved_track)
from .showing import Showing, no_dancer_warning
from .status import Hooks, Report, StageTimes, StatusWriter


def run_transfer(job: TransferJob, report: Report | None = None,
                 cancel: threading.Event | None = None, bundle: Bundle | None = None,
                 progress: bool = False, models: ModelSource | None = None) -> TransferResult:
    """Run ``job`` (or continue it) and return where its frames and videos are.

    ``report(stage, done, total)`` is called as work advances (stages "poses", "generate",
    "finish"); ``cancel`` set makes it raise `JobCancelled`, leaving a resumable folder;
    ``bundle`` is a model already loaded (it is moved to the job's device, or on the CPU
    exported to ONNX Runtime when that backend runs); ``models`` is where networks come from
    instead (a worker passes its model cache, so the next job with the same bundle loads
    nothing; see `inference.ModelSource`); ``progress`` shows bars on stderr.
    """
    if models is None:
        models = GivenBundle(bundle) if bundle is not None else LoadEachTime()
    hooks = Hooks(report, cancel or threading.Event(), progress)
    return TransferRun(job, hooks, models, bundle).run()


class TransferRun:
    """One run of a job: everything it needs is settled in the constructor (reading and
    checking the inputs, then, holding the folder's lock, deciding what the run does with
    the folder (`job_state.decide`), loading the networks and claiming the folder); ``run``
    then makes the frames and videos and releases the lock."""

    def __init__(self, job: TransferJob, hooks: Hooks, models: ModelSource,
                 bundle: Bundle | None = None) -> None:
        self.job, self.hooks = job, hooks
        self.info = probe(job.source, job.fps)
        start, stop = frame_range(job.source, job.frame_start, job.frame_stop,
                                  self.info.frame_count)
        given = (given_track(job.poses, job.source, self.info.frame_count, self.info.size,
                             start, stop) if job.poses is not None else None)
        self.source = SourceRange(job.source, start, stop, job.fps, job.pose_options, given)
        check_adjustments(job, self.n)
        self.target = load_target(job, bundle)
        self.showing = Showing.for_job(job, self.target)
        identity = job_identity(job, self.source, self.info.fps, self.target,
                                bundle.folder if bundle is not None else job.model)
        if self.showing.background.kind != TARGET:
            identity["background"] = self.showing.background.identity()
        self.identity = identity
        self.folder = JobFolder(job.output_dir)
        check_claimable(self.folder.root)  # before anything is written
        self.lock = FolderLock(self.folder.root, OWNED)
        self.lock.acquire()
        try:
            self._claim(models)
        except BaseException:
            self.lock.release(abandon=True)  # leave no folder behind a run that claimed none
            raise
        self.times = StageTimes()

    @property
    def n(self) -> int:
        return self.source.stop - self.source.start

    def _claim(self, models: ModelSource) -> None:
        """Under the folder's lock: decide what this run does with it (`job_state.decide`),
        load the networks, then make the folder ready."""
        job, folder = self.job, self.folder
        # An earlier job's files linked in are this job's to keep or discard.
        seeded = job.reuse is not None and folder.seed_from(job.reuse)
        disk = folder.read_disk(folder.frames_done(layers=self.showing.keeps_layers),
                                self.wanted_videos)
        self.decision = decide(disk, self.identity, job.overwrite or seeded,
                               lambda made: choose_runtime(job, made))
        self.runtime, self.backend = self.decision.chosen
        width, height = self.target.resolution
        self.threads = (use_cpu_threads(job.threads, width * height, self.backend or "torch")
                        if self.runtime.device.type == "cpu" else None)
        began = time.perf_counter()
        self.networks: Networks | None = None
        if self.backend is not None and self.action is not Action.FINISHED:
            assert job.model is not None
            self.networks = load_networks(models, job.model, self.runtime, self.backend)
        self.load_seconds = time.perf_counter() - began  # ONNX Runtime sessions take a while
        folder.apply(self.decision, self.identity, job.parameters(),
                     Made(self.backend, self.runtime.precision))
        if self.action.continues and self.source.given is None:
            # The poses its first frames were made from (see `plan.saved_track`).
            saved = saved_track(folder.poses, self.n)
            self.source = replace(self.source, given=saved) if saved is not None else self.source

    @property
    def action(self) -> Action:
        """What this run does with its folder: the one state, `job_state.decide`'s."""
        return self.decision.action

    @property
    def wanted_videos(self) -> list[Path]:
        """The videos a complete run of this job has written."""
        folder = self.folder
        return [folder.video] + ([folder.side_by_side] if self.job.side_by_side else [])

    # -- the run -------------------------------------------------------------------------

    def run(self) -> TransferResult:
        try:
            return self._run()
        finally:
            self.lock.release()

    def _run(self) -> TransferResult:
        job, folder, n = self.job, self.folder, self.n
        result = TransferResult(folder.frames_dir, n, folder.video,
                                folder.side_by_side if job.side_by_side else None)
        if self.action is Action.FINISHED:
            result.warnings = list(folder.read_status().get("warnings", []))
            return result
        done = folder.frames_done(layers=self.showing.keeps_layers)
        folder.remove_frames_from(done)
        earlier = _earlier_poses(folder) if self.action is Action.REVISE else None
        status = self._start_status(done)
        try:
            plan = self._plan(status)
            result.warnings = plan.warnings
            if self.action is Action.REVISE:
                done = self._revise(plan, earlier, done, status)
            FrameLoop(job, folder, self.target, self.showing, self.networks, self.runtime,
                      self.info, self.source.start, self.times, self.hooks).run(plan, done, status)
        except (JobCancelled, KeyboardInterrupt) as exc:
            written = folder.frames_done()
            status.set(force=True, state="cancelled", frames_written=written,
                       timings=self.times.to_dict(),
                       message=f"cancelled after {written} of {n} frames; run the job again to "
                               f"continue")
            folder.log(f"cancelled with {written} of {n} frames written")
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise JobCancelled(f"{folder.root}: cancelled after {written} of {n} frames; run the "
                            f"same job again to continue") from None
        except BaseException as exc:
            written = folder.frames_done()
            error = exc.noting(f"{written} frames are kept; free space and run the same "
                               f"command to continue") if isinstance(exc, NoSpaceError) else exc
            with suppress(OSError, BackendError):  # a full disk may refuse these too
                status.set(force=True, state="failed", frames_written=written,
                           message=str(error) or type(error).__name__)
                folder.log(f"failed: {type(error).__name__}: {error}")
            if error is exc:
                raise
            raise error from exc
        status.set(force=True, state="done", stage="finish", done=n, frames_written=n,
                   timings=self.times.to_dict(), message=f"{n} frames")
        folder.log(f"done: {n} frames, {folder.video.name}"
                   + (f", {folder.side_by_side.name}" if job.side_by_side else ""))
        if self.hooks.report is not None:
            self.hooks.report("finish", 1, 1)
        return result

    def _start_status(self, done: int) -> StatusWriter:
        job, runtime = self.job, self.runtime
        status = StatusWriter(self.folder, {
            "state": "running", "stage": "poses", "done": 0, "total": self.n,
            "frame_count": self.n, "frames_written": done,
            "resumed_from": done if self.action is Action.RESUME else None,
            "device": runtime.describe(), "threads": self.threads, "method": job.method,
            "load_seconds": round(self.load_seconds, 3), "warnings": []})
        start, stop = self.source.start, self.source.stop
        how = {Action.RESUME: f"resumed at frame {done + 1}",
               Action.REVISE: "revising the earlier run"}.get(self.action, "started")
        self.folder.log(
            f"{how}: {job.method}, frames {start}..{stop - 1} of {job.source}, on "
            f"{runtime.describe()}"
            + (f" with {describe_backend(self.backend, self.networks)}; networks ready in "
               f"{self.load_seconds:.1f} s" if self.backend else ""))
        earlier = self.decision.earlier
        recorded = earlier.made.backend if earlier is not None else None
        if recorded is not None and recorded != self.backend and done:
            self.folder.log(
                f"note: frames 1..{done} were made with {BACKEND_NAMES[recorded]}; on "
                f"{runtime.device.type} this run continues with "
                f"{BACKEND_NAMES[str(self.backend)]}, so frames from {done + 1} on may differ "
                f"slightly from an uninterrupted run")
        return status

    # -- the pose pass -------------------------------------------------------------------

    def _plan(self, status: StatusWriter) -> FramePlan:
        """The pose pass (see `plan`); saves the source's and the normalized poses."""
        job, folder, hooks = self.job, self.folder, self.hooks
        began = time.perf_counter()
        watch = Watch(hooks.reporter("poses", status), hooks.cancel, hooks.progress)
        plan = plan_frames(self.source, self.target,
                           PosePlacement(job.adjustments, job.source_stats), watch)
        seconds = time.perf_counter() - began
        self.times.add("poses", seconds, len(plan.source))
        plan.source.save(folder.poses)
        plan.normalized.save(folder.normalized)
        if plan.absent is not None:
            plan.warnings.append(no_dancer_warning(plan, self.source.start, self.showing))
        status.set(force=True, warnings=plan.warnings)
        folder.log(f"poses: {len(plan.source)} frames in {seconds:.1f} s, subject found in "
                   f"{int(plan.source.detected.sum())}")
        for message in plan.warnings:
            folder.log(f"warning: {message}")
        return plan

    def _revise(self, plan: FramePlan, earlier: PoseTrack | None, done: int,
                status: StatusWriter) -> int:
        """Keep the frames before the first one whose poses changed (``earlier``: the
        normalized poses the earlier run drew), and record the job (see `job`, "Revising");
        returns how many frames are kept."""
        kept = min(done, first_change(earlier, plan, self.target))
        self.folder.remove_frames_from(kept)
        self.folder.record(self.identity, self.job.parameters(),
                           Made(self.backend, self.runtime.precision))
        status.set(force=True, frames_written=kept, resumed_from=kept)
        self.folder.log(f"revised: the adjustments changed; the first changed frame is "
                        f"{kept + 1}, so {kept} of the {done} frames made before are kept")
        return kept


def _earlier_poses(folder: JobFolder) -> PoseTrack | None:
    """The normalized poses a job folder's earlier run drew (None: none readable)."""
    try:
        return PoseTrack.load(folder.normalized) if folder.normalized.is_file() else None
    except InputError:
        return None
