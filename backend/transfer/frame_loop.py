"""The frames of a planned transfer: labels, the networks (or the nearest-neighbour baseline)
and the writers, overlapped in three threads.

    labels (and source frames for the side-by-side video)   reader thread (`Prefetch`)
    G(label, previous frame) + face residual, composited     this thread
    frames/NNNNNN.png, result.mp4 [, side_by_side.mp4]       writer thread (`BackgroundSink`)

Queues are bounded (``QUEUE_DEPTH``), so memory stays flat whatever the video's length. A
resumed run reads the frames already written (their layers, where the job keeps them) and
feeds the last one to the generator as its previous frame, so the frames it makes are those an
uninterrupted run would have made.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import JobCancelled
from ..labels import render_label
from ..progress import progress_bar
from ..runtime import Runtime
from ..target.face import box_of
from ..video import VideoInfo, read_frames
from .generate import FrameGenerator
from .inference import Networks
from .job import JobFolder, TransferJob
from .layers import Layer
from .nearest import NearestRenderer
from .outputs import OutputFrame, Outputs, VideoSettings
from .plan import FramePlan
from .showing import Showing
from .status import Hooks, StageTimes, StatusWriter
from .streams import BackgroundSink, Prefetch
from .target_spec import TargetSpec

QUEUE_DEPTH = 4


@dataclass
class FrameLoop:
    """What making a job's frames needs, settled by `pipeline.TransferRun` before it runs."""

    job: TransferJob
    folder: JobFolder
    target: TargetSpec
    showing: Showing
    networks: Networks | None  # None: the nearest-neighbour baseline, or nothing to make
    runtime: Runtime
    info: VideoInfo  # the source video's
    start: int  # the job's first source frame
    times: StageTimes
    hooks: Hooks

    def run(self, plan: FramePlan, done: int, status: StatusWriter) -> None:
        """Make frames ``done``.. of the range and write every frame's outputs."""
        job, folder, layout, times = self.job, self.folder, self.target.layout, self.times
        n = len(plan.normalized)
        render, restore = self._renderer(plan)
        restore(None)
        labels_from = 0 if job.side_by_side else (done if self.networks is not None else n)
        settings = VideoSettings(
            fps=self.info.frame_rate, frame_size=layout.content, source_size=self.info.size,
            audio_from=self.info.path if self.info.has_audio else None,
            audio_start_s=self.start / self.info.fps)
        began, made = time.monotonic(), 0
        status.set(force=True, stage="generate", done=0, total=n)
        layers = folder.layer_writer() if self.showing.keeps_layers else None
        with Outputs(folder.frame_writer(), folder.video, settings,
                     folder.side_by_side if job.side_by_side else None, layers) as outputs:
            for writer in (outputs.pngs, outputs.layers):
                if writer is not None:
                    writer.resume()

            def write(out: OutputFrame) -> None:
                with times.timing("write"):
                    outputs.write(out)

            sink = BackgroundSink(write, QUEUE_DEPTH, "transfer-outputs")
            inputs = Prefetch(self._inputs(plan, done, labels_from), QUEUE_DEPTH,
                              "transfer-inputs")
            failed = True
            reporter = self.hooks.reporter("generate", status)
            if done:  # a resumed job's progress starts past the frames already written
                reporter(done, n)
            try:
                counted = progress_bar(inputs, n, "transfer", self.hooks.progress,
                                       lambda k, total: reporter(k, total) if k > done else None)
                for i, item in enumerate(counted):
                    if self.hooks.cancel.is_set():
                        raise JobCancelled("cancelled")
                    if item.written is not None:
                        picture, shown, previous = item.written
                        keep = None
                        if i == done - 1:
                            restore(previous)  # the previous-frame input of the first new one
                    else:
                        with times.timing("generate"):
                            layer = render(i, item.label)
                        picture, shown, keep = self.showing.new(layer, item.background)
                        made += 1
                    label = None if item.label is None else layout.crop(item.label)
                    sink.put(OutputFrame(i, picture, shown, i >= done, label, item.source,
                                         keep, absent=plan.is_absent(i)))
                failed = False
            finally:
                inputs.close()
                _close(sink, quietly=failed)
            if self.hooks.report is not None:
                self.hooks.report("finish", 0, 1)
        seconds = time.monotonic() - began
        # The three threads' wall time together: against each stage's own rate, how well
        # they overlap (benchmarks/bench_transfer.py prints the ratio).
        status.set(frames_wall={"frames": n, "seconds": round(seconds, 4)})
        folder.log(f"generate: {made} new frames in {seconds:.1f} s "
                   f"({made / max(seconds, 1e-9):.2f} fps), {done} kept from before; each stage "
                   f"alone: {times.describe()}")
        written = folder.frames_done()
        if written != n or folder.frame_path(n).exists():
            raise RuntimeError(f"{folder.frames_dir}: {written} frames after the run, expected {n}")


    def _renderer(self, plan: FramePlan):
        """(render(i, label) -> frame, restore(last written frame)) for the job's method."""
        render, restore = self._drawing(plan)
        empty = self.showing.empty(self.target.layout.content)
        written = self.showing.over_plate(empty)

        def render_or_empty(i: int, label: np.ndarray) -> Layer:
            if not plan.is_absent(i):
                return render(i, label)
            restore(written)  # what the next frame sees, as it would after a resume
            return empty
        return render_or_empty, restore

    def _drawing(self, plan: FramePlan):
        """`_renderer`'s pair for the frames with a dancer."""
        if self.target.prepared is not None:
            nearest = NearestRenderer(self.target.prepared, plan.normalized, self.target.layout)
            return (lambda i, label: Layer(nearest(i))), (lambda frame: None)
        assert self.networks is not None
        generator = FrameGenerator(self.networks, self.runtime, self.target.layout,
                                   face=self.job.face, plate=self.target.plate)
        if plan.windows is not None and self.target.window is not None:
            self.folder.log(self.target.window.describe(plan.windows))
        windows = plan.windows
        return (lambda i, label: generator(label, box_of(plan.boxes, i),
                                           None if windows is None else box_of(windows, i))), \
            generator.reset

    def _inputs(self, plan: FramePlan, done: int, labels_from: int) -> Iterator["FrameInputs"]:
        """Per frame: the frame already written (before ``done``), the label (from
        ``labels_from``), the source frame (for the side-by-side video) and the background."""
        job, n = self.job, len(plan.normalized)
        start = self.start
        sources = read_frames(job.source, start, start + n, job.fps) if job.side_by_side else None
        backgrounds = self.showing.backgrounds(self.target.layout.content, n)
        try:
            for i in range(n):
                background = next(backgrounds) if backgrounds is not None else None
                written = self.showing.kept(self.folder, i) if i < done else None
                label = None
                if i >= labels_from:
                    with self.times.timing("labels"):
                        label = render_label(plan.normalized.frame(i), plan.normalized.size,
                                             self.target.resolution, self.target.style)
                source = next(sources) if sources is not None else None
                yield FrameInputs(written, label, source, background)
        finally:
            if sources is not None:
                sources.close()


@dataclass
class FrameInputs:
    written: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # a frame on disk (`Showing.kept`)
    label: np.ndarray | None  # the label canvas
    source: np.ndarray | None  # the source frame (side-by-side only)
    background: np.ndarray | None  # the user's background frame (`layers.BackgroundChoice`)




def _close(sink: BackgroundSink, quietly: bool) -> None:
    """Finish writing what was queued; when the loop failed, its error is the one to raise."""
    if not quietly:
        sink.close()
        return
    try:
        sink.close()
    except BaseException:
        pass
