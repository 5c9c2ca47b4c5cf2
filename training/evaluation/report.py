"""The evaluation report: metrics.json, report.md (tables in the paper's format), image strips."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from backend.paths import atomic_write_bytes, atomic_write_json
from backend.video.images import list_images, read_image

from .heldout_set import HeldOutSet
from .image_metrics import REGIONS
from .pose_metrics import PARTS

NOT_AVAILABLE = "not available"
REAL = "real frames"  # the pose table's reference row: the detector on the real frames
CAPTION_HEIGHT = 14


def _cell(value: float | None, digits: int, available: bool = True) -> str:
    if not available:
        return NOT_AVAILABLE
    return "-" if value is None else f"{value:.{digits}f}"


def image_table(results: dict) -> list[str]:
    """Tables 1-2 of the paper: SSIM and LPIPS on the full frame, the body and the face."""
    available = results["lpips"]["available"]
    head = ["Method"] + [f"{label} {r}" for r in ("full", "body", "face")
                         for label in ("SSIM ↑", "LPIPS ↓")] + ["Flicker ↓"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, scores in results["methods"].items():
        cells = [name]
        for region in REGIONS:
            s = scores["image"][region]
            cells += [_cell(s["ssim"], 4), _cell(s["lpips"], 4, available)]
        cells.append(_cell(scores["flicker"], 2))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def pose_table(results: dict) -> list[str]:
    """Tables 3-4 of the paper: keypoint distance and missed keypoints, body / face / hands."""
    head = (["Method"] + [f"{p} distance (px) ↓" for p in PARTS]
            + [f"{p} missed ↓" for p in PARTS])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = {**{n: s["pose"] for n, s in results["methods"].items()}, REAL: results["real"]["pose"]}
    for name, pose in rows.items():
        cells = ([name] + [_cell(pose[p]["distance_px"], 2) for p in PARTS]
                 + [_cell(pose[p]["missed_per_frame"], 2) for p in PARTS])
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(results: dict) -> str:
    w, h = results["output_size"]
    first, stop = results["frames"]
    lpips = results["lpips"]
    lines = [
        f"# Evaluation of {results['bundle']}",
        "",
        f"Held-out frames {first}..{stop - 1} of {results['video']} ({stop - first} frames, "
        f"never seen in training; run {results['run']}), each method driven by their own "
        f"poses. Frames are {w}x{h} pixels.",
        "",
        "## Image quality (paper Tables 1-2)",
        "",
        *image_table(results),
        "",
        "SSIM: scikit-image, 7x7 window. LPIPS: v0.1, AlexNet. " + (
            f"LPIPS weights: {lpips['backbone']}, {lpips['heads']}." if lpips["available"]
            else f"LPIPS is {NOT_AVAILABLE}: {lpips['reason']}"),
        "Body: the box around every keypoint of the label; face: the face GAN's box, in frames "
        "whose label shows a face. Flicker: mean |change of the output - change of the real "
        "video| between consecutive frames, in 8-bit levels.",
        "",
        "## Poses found again on the outputs (paper Tables 3-4)",
        "",
        *pose_table(results),
        "",
        "Distance: mean pixel distance between a keypoint given to the method and the same "
        "keypoint detected on its output (MediaPipe Holistic, as the inputs); missed: keypoints "
        f"per frame given but not found. \"{REAL}\": the detector on the real frames at this "
        "size, the best a method can reach.",
        "",
    ]
    mattes = {n: s["matte_iou"] for n, s in results["methods"].items() if s.get("matte_iou")}
    if mattes:
        lines += ["## The matte", "", "| Method | IoU of alpha and the person's mask ↑ |",
                  "|---|---|", *[f"| {n} | {v:.4f} |" for n, v in mattes.items()], "",
                  "Alpha and the mask (MediaPipe's segmentation of the real frame) both "
                  "thresholded at one half; the mean over the held-out frames.", ""]
    if results.get("strips"):
        lines += ["## Frames", "", "label | real | " + " | ".join(results["methods"]), ""]
        lines += [f"![frame {Path(p).stem}]({p})" for p in results["strips"]]
        lines.append("")
    return "\n".join(lines)


def captioned(image: np.ndarray, caption: str) -> np.ndarray:
    """``image`` with a white caption band above it."""
    band = np.full((CAPTION_HEIGHT, image.shape[1], 3), 255, np.uint8)
    cv2.putText(band, caption[: max(1, image.shape[1] // 6)], (2, CAPTION_HEIGHT - 4),
                cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([band, image], axis=0)


def write_strips(folder: Path, held_out: HeldOutSet, real: Path, frames: dict[str, Path],
                 count: int) -> list[str]:
    """``count`` strips (label | real | each method) of evenly spaced held-out frames;
    their paths relative to the report folder."""
    if count <= 0:
        return []
    picks = sorted(set(np.linspace(0, len(held_out) - 1, count).round().astype(int).tolist()))
    columns = {"real": list_images(real), **{n: list_images(f) for n, f in frames.items()}}
    out = []
    for t in picks:
        panels = [captioned(held_out.label(t), "label")]
        panels += [captioned(read_image(paths[t]), name) for name, paths in columns.items()]
        gap = np.full((panels[0].shape[0], 2, 3), 255, np.uint8)
        strip = np.concatenate([x for p in panels for x in (p, gap)][:-1], axis=1)
        ok, data = cv2.imencode(".png", cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError("OpenCV could not encode a strip")
        path = folder / "strips" / f"frame_{held_out.first + t:06d}.png"
        atomic_write_bytes(path, data.tobytes())
        out.append(str(path.relative_to(folder)))
    return out


def write_report(folder: Path, results: dict) -> None:
    atomic_write_json(folder / "metrics.json", results)
    atomic_write_bytes(folder / "report.md", markdown(results).encode())
