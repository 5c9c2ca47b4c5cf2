"""The built-in example that runs anywhere: ``python -m backend demo -o OUT_DIR``.

It makes a source clip (the demo performer dancing) and a target clip (another look of the
performer moving freely, walking towards and away from the camera), runs the real pose
pipeline on both (MediaPipe detection, gap filling, smoothing), normalizes the source's poses
onto the target and writes a side-by-side preview video. With ``source`` a real video's moves
are used instead of the built-in dance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..labels import LabelStyle
from ..normalize import compute_stats, normalize_track
from ..pose.pipeline import PoseOptions, video_poses
from ..preview import side_by_side_frames, side_by_side_size
from ..progress import progress_bar
from ..video import Mp4Writer, probe, read_frame, read_frames
from .clip import make_clip
from .motion import dance_motion, target_motion
from .performer import LOOKS


@dataclass(frozen=True)
class DemoConfig:
    seconds: float = 6.0
    fps: float = 30.0
    size: tuple[int, int] = (512, 512)
    preview_height: int = 360
    seed: int = 0


def run_demo(out_dir: str | Path, config: DemoConfig = DemoConfig(), source: str | Path | None = None,
             progress: bool = True) -> dict[str, Path]:
    """Write the demo's clips, pose tracks and ``preview.mp4`` into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = int(round(config.seconds * config.fps))
    paths = {name: out / name for name in ("source.mp4", "target.mp4", "source_poses.npz",
                                           "target_poses.npz", "normalized_poses.npz", "preview.mp4")}
    if source is None:
        source = paths["source.mp4"]
        make_clip(source, dance_motion(n, config.fps, config.size, seed=config.seed), LOOKS["red"],
                  progress=progress)
    make_clip(paths["target.mp4"], target_motion(n, config.fps, config.size, seed=config.seed + 1),
              LOOKS["teal"], progress=progress)
    source_track = video_poses(source, PoseOptions(), progress=progress)
    target_track = video_poses(paths["target.mp4"], PoseOptions(), progress=progress)
    moved = normalize_track(source_track, compute_stats(source_track), compute_stats(target_track))
    for name, track in (("source_poses.npz", source_track), ("target_poses.npz", target_track),
                        ("normalized_poses.npz", moved)):
        track.save(paths[name])
    write_preview(source, paths["target.mp4"], source_track, moved, paths["preview.mp4"],
                  config.preview_height, progress)
    paths["source.mp4"] = Path(source)
    return paths


def write_preview(source: Path, target: Path, source_track, moved, out: Path, height: int,
                  progress: bool) -> None:
    backdrop = read_frame(target, 0)
    frames = read_frames(source, 0, len(source_track))
    panels = side_by_side_frames(frames, source_track, moved, backdrop, height, LabelStyle())
    with Mp4Writer(out, probe(source).frame_rate, side_by_side_size(source_track.size, moved.size, height),
                   audio_from=source) as writer:
        for frame in progress_bar(panels, len(source_track), "preview", progress):
            writer.write(frame)
