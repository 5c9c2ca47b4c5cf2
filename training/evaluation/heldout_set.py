"""The evaluation's ground truth: the held-out frames of a prepared run, and their poses.

Training never saw the last part of the target video (its time split, ``split.eval`` in the
prepared manifest). Driven by their own poses, a perfect model would redraw those frames
exactly, so the real frames are the ground truth. Everything here is in *output pixels*:
the target's frame inside the model's canvas, as the transfer's result frames are (see
`backend.target.letterbox`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.errors import InputError
from backend.labels import LabelStyle, render_label
from backend.pose.track import PoseTrack
from backend.target.face import face_centers
from backend.target.letterbox import Letterbox, resize
from backend.target.prepared import PreparedRun
from backend.video import PngSequenceWriter, probe, read_frames

from .image_metrics import Box, body_box, clip_box
from .pose_metrics import points, present


@dataclass
class HeldOutSet:
    """Frames [first, stop) of ``video`` (indices in the video), their poses in video pixels,
    and how the model's canvas holds them."""

    run: PreparedRun
    video: Path
    first: int
    stop: int
    poses: PoseTrack
    layout: Letterbox  # the target's frame in the evaluated model's canvas
    style: LabelStyle

    @staticmethod
    def open(run_dir: Path, resolution: tuple[int, int], style: LabelStyle,
             max_frames: int | None = None) -> "HeldOutSet":
        run = PreparedRun.open(run_dir)
        a, b = run.eval_range
        if b <= a:
            raise InputError(run.folder / "manifest.json", "the run holds no frames out of "
                             "training (its time split's eval part is empty): prepare it with "
                             "--holdout above 0")
        if max_frames is not None:
            b = min(b, a + max_frames)
        video = run.manifest.video
        if not video.exists():
            raise InputError(video, f"the target video of {run_dir} is not there any more")
        track = run.track()
        if tuple(probe(video).size) != tuple(track.size):
            raise InputError(video, f"is not the {track.size[0]}x{track.size[1]} video that "
                                    f"{run_dir} was prepared from")
        layout = Letterbox.fit_into(track.size, resolution, style.fit)
        offset = run.manifest.start
        return HeldOutSet(run, video, offset + a, offset + b, track.slice(a, b), layout, style)

    def __len__(self) -> int:
        return self.stop - self.first

    @property
    def output_size(self) -> tuple[int, int]:
        return self.layout.content

    def real_frames(self):
        """The real frames as the model draws its frames: into the canvas, bars cut away."""
        for frame in read_frames(self.video, self.first, self.stop):
            yield np.ascontiguousarray(self.layout.crop(self.layout.apply(frame)))

    def write_real_frames(self, folder: Path) -> Path:
        """The real frames as PNGs 000001.png... in ``folder`` (a rerun continues them)."""
        writer = PngSequenceWriter(folder)
        done = writer.resume()
        if done < len(self):
            for i, frame in enumerate(self.real_frames()):
                if i >= done:
                    writer.write(frame)
        return folder

    def masks(self):
        """The person's masks of the held-out frames, cut to the output frame: float32 in
        [0, 1] (the prepared run's, from its segmentation)."""
        a = self.first - self.run.manifest.start
        for index in range(a, a + len(self)):
            yield self.layout.crop(resize(self.run.mask(index), self.layout.canvas))

    def label(self, i: int) -> np.ndarray:
        """The label the generator gets for held-out frame ``i``, cut to the output frame."""
        canvas = render_label(self.poses.frame(i), self.poses.size, self.layout.canvas,
                              self.style)
        return np.ascontiguousarray(self.layout.crop(canvas))

    def output_poses(self) -> PoseTrack:
        """The input poses in output pixels (what the re-detected poses are compared with)."""
        move, p = self.layout.content_points, self.poses
        return PoseTrack(move(p.body), move(p.face), move(p.hands), p.detected.copy(), p.fps,
                         self.output_size, dict(p.detector))

    def body_boxes(self) -> list[Box | None]:
        """Per frame, the box around every keypoint the label shows (output pixels)."""
        moved = self.output_poses()
        shown, where = present(moved, self.style), points(moved)
        boxes = []
        for t in range(len(self)):
            xy = np.concatenate([where[part][t][shown[part][t]] for part in shown])
            boxes.append(body_box(xy, self.output_size))
        return boxes

    def face_boxes(self, multiple: int) -> list[Box | None]:
        """Per frame, the face GAN's box (output pixels); None where the label shows no face."""
        canvas_boxes = self.layout.face_boxes(face_centers(self.poses), multiple)
        shown = present(self.poses, self.style)["face"].any(axis=1)
        (px, py), boxes = self.layout.paste, []
        for t, (x0, y0, x1, y1) in enumerate(canvas_boxes):
            boxes.append(clip_box((x0 - px, y0 - py, x1 - px, y1 - py), self.output_size)
                         if shown[t] else None)
        return boxes
