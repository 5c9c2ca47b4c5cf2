"""The person window: placed from the label's keypoints, G paints only inside it, the plate is
everything else (backend/target/window.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.target.window import WindowSpec, Windows, keypoint_boxes

CANVAS = (256, 128)


def moving_boxes(n: int = 40) -> np.ndarray:
    """A 30x60 box whose centre walks from x=40 to x=220 and bobs up and down."""
    t = np.arange(n)
    cx = 40 + 180 * t / (n - 1)
    cy = 64 + 10 * np.sin(t / 3)
    return np.stack([cx - 15, cy - 30, cx + 15, cy + 30], 1)


def test_the_window_follows_a_moving_box_and_holds_it():
    boxes = moving_boxes()
    spec = WindowSpec((48, 80), margin=4.0)
    regions = spec.place(boxes, CANVAS)
    sizes = regions[:, 2:] - regions[:, :2]
    assert (sizes == (48, 80)).all()  # a fixed size where the box fits
    assert (regions[:, :2] >= 0).all() and (regions[:, 2] <= CANVAS[0]).all() \
        and (regions[:, 3] <= CANVAS[1]).all()
    need = boxes + (-4, -4, 4, 4)
    assert (regions[:, 0] <= np.floor(need[:, 0]) + 1).all()  # the box, margin included, inside
    assert (regions[:, 2] >= np.ceil(need[:, 2]) - 1).all()
    assert (regions[:, 1] <= np.floor(need[:, 1]) + 1).all()
    assert (regions[:, 3] >= np.ceil(need[:, 3]) - 1).all()
    centres = (regions[:, :2] + regions[:, 2:]) / 2
    walked = (boxes[:, :2] + boxes[:, 2:]) / 2
    assert np.abs(centres[:, 0] - walked[:, 0]).max() <= 9  # it follows, a frame behind at most
    assert np.abs(np.diff(centres[:, 1])).max() <= 4  # steadier than the bob (10 px)


def test_the_window_is_causal_and_stays_inside_the_canvas_at_the_edge():
    boxes = moving_boxes()
    spec = WindowSpec((48, 80), margin=4.0)
    regions = spec.place(boxes, CANVAS)
    later = boxes.copy()
    later[25:] += (-100, 0, -100, 0)  # the poses change from frame 25 on
    assert np.array_equal(spec.place(later, CANVAS)[:25], regions[:25])
    edge = np.array([[240.0, 100, 256, 128]] * 3)  # the person at the bottom-right corner
    assert [tuple(r) for r in spec.place(edge, CANVAS)] == [(208, 48, 256, 128)] * 3
    nobody = np.full((2, 4), np.nan)  # no keypoint at all: the canvas' centre
    assert [tuple(r) for r in spec.place(nobody, CANVAS)] == [(104, 24, 152, 104)] * 2


def test_a_pose_that_does_not_fit_is_drawn_scaled_and_reported():
    spec = WindowSpec((48, 80), margin=0.0)
    boxes = np.array([[100.0, 20, 130, 80], [80, 20, 152, 80], [100, 20, 130, 80]])  # arms out
    regions = spec.place(boxes, CANVAS)
    sizes = regions[:, 2:] - regions[:, :2]
    assert tuple(sizes[0]) == (48, 80) and tuple(sizes[2]) == (48, 80)
    assert tuple(sizes[1]) == (72, 120)  # 1.5x, the window's aspect kept
    assert regions[1, 0] <= 80 and regions[1, 2] >= 152  # nothing of the person cut
    assert spec.scaled_frames(regions) == 1
    assert "1 of 3 frames did not fit and were drawn scaled (at most 1.50x)" in \
        spec.describe(regions)
    # a window as tall as the canvas is not widened for a person taller than the canvas
    tall = WindowSpec((48, 128), margin=0.0).place(np.array([[100.0, -20, 130, 150]]), CANVAS)
    assert tuple(tall[0]) == (91, 0, 139, 128)


def test_the_window_size_comes_from_the_targets_poses():
    from backend.pose.track import PoseTrack
    from backend.target.letterbox import Letterbox

    n = 20
    body = np.zeros((n, 25, 3), np.float32)
    body[:, 0] = (200, 100, 1)  # a nose
    body[:, 11] = (220, 380, 1)  # an ankle: a body 280 px tall, 20 wide, in a 1280x720 video
    track = PoseTrack(body, np.zeros((n, 70, 3), np.float32), np.zeros((n, 2, 21, 3), np.float32),
                      np.ones(n, bool), 30.0, (1280, 720))
    layout = Letterbox.fit_into((1280, 720), CANVAS)  # content 228x128, scale 0.178
    spec = WindowSpec.for_target(track, layout, multiple=8, margin=0.1)
    height = 280 * layout.sy
    assert spec.margin == pytest.approx(0.1 * height, abs=1e-3)
    assert spec.size == (16, 64)  # 20*0.178 + 2 margins = 13.5 -> 16; 49.8 + 10.0 = 59.7 -> 64
    regions = spec.regions(track, layout)
    points = layout.apply_points(body)
    assert (regions[:, 1] <= points[:, 0, 1]).all() and (regions[:, 3] >= points[:, 11, 1]).all()


def test_keypoint_boxes_ignore_missing_points():
    points = np.array([[[10, 20, 1], [0, 0, 0], [30, 5, 0.5]], [[0, 0, 0]] * 3], np.float32)
    boxes = keypoint_boxes(points)
    assert boxes[0].tolist() == [10, 5, 30, 20] and np.isnan(boxes[1]).all()


def test_outside_the_window_the_frame_is_the_plate_exactly():
    """G's output pasted into its window: colour black and alpha exactly 0 elsewhere, so the
    composite is the plate to the bit, also where a face box reaches past the window."""
    from backend.models.step import Backdrop, generate_frame

    torch.manual_seed(0)
    plate = torch.rand(2, 3, 32, 64) * 2 - 1
    seen = []

    def g(x):
        seen.append(x.shape)
        return torch.rand(x.shape[0], 4, *x.shape[2:]) * 2 - 1

    def face(label_crop, frame_crop):
        return torch.ones_like(frame_crop)  # pushes every pixel of its box up

    window = Windows.of([(8, 0, 24, 16), (40, 8, 64, 32)], (16, 16))  # the second one scaled
    drawn = generate_frame(g, face, torch.zeros(2, 3, 32, 64), None, [(20, 12, 28, 20)] * 2,
                           backdrop=Backdrop(plate, window=window))
    assert seen == [torch.Size([2, 6, 16, 16])]  # G saw the windows alone
    inside = window.inside(drawn.frame).bool().expand_as(drawn.frame)
    assert torch.equal(drawn.frame[~inside], plate[~inside])
    assert drawn.alpha[~inside[:, :1]].eq(0).all()
    assert drawn.person[~inside].eq(-1).all()  # black: RGBA output is 0 there
    with pytest.raises(ValueError, match="needs a generator with a matte"):
        generate_frame(lambda x: x[:, :3], None, torch.zeros(1, 3, 32, 64), None,
                       backdrop=Backdrop(plate[:1], window=Windows.of([(0, 0, 16, 16)], (16, 16))))


def test_cut_and_paste_are_inverse_where_the_window_fits():
    images = torch.rand(2, 4, 32, 64)
    windows = Windows.of([(8, 0, 24, 16), (40, 16, 56, 32)], (16, 16))
    cut = windows.cut(images)
    assert torch.equal(cut[0], images[0, :, 0:16, 8:24])
    pasted = windows.paste(cut, (64, 32), fill=0.0)
    assert torch.equal(pasted * windows.inside(images), pasted)
    assert torch.equal(pasted[1, :, 16:32, 40:56], images[1, :, 16:32, 40:56])


@pytest.fixture(scope="module")
def window_bundle(tmp_path_factory):
    """The tiny networks with a matte and a person window, trained briefly on the demo room
    (a performer walking about a static camera's frame), exported; with the room's poses."""
    from backend.demo import make_demo_clip
    from training.data.prepare import PrepareOptions, prepare
    from training.export import export_bundle
    from training.options import preset
    from .helpers import train_on_one_thread

    folder = tmp_path_factory.mktemp("window")
    track = make_demo_clip(folder / "frames", motion="target", n_frames=30, fps=30.0,
                           size=(128, 96), seed=2, progress=False)
    prepare(folder / "frames", folder / "run",
            PrepareOptions(size=(128, 64), label_sizes=((128, 64),), preset="tiny"),
            track=track, progress=False)
    opts = preset("tiny")
    opts.size = (128, 64)
    opts.schedule.stages = ("global", "face")
    opts.loss.perceptual = "none"
    opts.model.matte, opts.model.window = "on", "on"
    opts.runtime.tensorboard = opts.runtime.progress = False
    train_on_one_thread(folder / "run", opts, 30)
    track.save(folder / "poses.npz")
    return folder, export_bundle(folder / "run", folder / "bundle")


def test_a_window_model_records_its_window_and_the_l1_it_chose(window_bundle):
    import json

    from backend.models.bundle import read_manifest

    folder, bundle = window_bundle
    manifest = read_manifest(bundle)
    window = manifest.training.window
    assert window is not None and window.size[0] < 128 and window.size[1] <= 64
    assert manifest.generator_size == window.size
    options = json.loads((folder / "run" / "train_options.json").read_text())
    assert options["model"]["window"] == "on"
    assert options["loss"]["lambda_l1"] == 10.0  # no perceptual loss: pix2pix's L1 is on


@pytest.mark.slow
def test_transparent_frames_are_exactly_zero_outside_the_window(window_bundle, tmp_path):
    from backend.models.images import over
    from backend.transfer import TransferJob, run_transfer
    from backend.models.bundle import read_manifest, read_plate
    from backend.pose.track import PoseTrack
    from backend.video.images import read_image

    folder, bundle = window_bundle
    jobs = {bg: run_transfer(TransferJob(folder / "frames", bundle, tmp_path / bg, fps=30.0,
                                         poses=folder / "poses.npz", frame_stop=10,
                                         background=bg, cpu_backend="torch"))
            for bg in ("transparent", "target")}
    log = (tmp_path / "target" / "log.txt").read_text()
    assert "person window" in log and "did not fit" in log
    manifest = read_manifest(bundle)  # the windows the job drew in, from its own poses
    layout = manifest.letterbox
    windows = manifest.training.window.regions(
        PoseTrack.load(tmp_path / "target" / "normalized_poses.npz"), layout)
    plate = layout.crop(read_plate(bundle, manifest))
    px, py = layout.paste
    for i in range(10):
        rgba = read_image(jobs["transparent"].frames_dir / f"{i + 1:06d}.png", alpha=True)
        shown = read_image(jobs["target"].frames_dir / f"{i + 1:06d}.png")
        x0, y0, x1, y1 = windows[i]
        outside = np.ones(rgba.shape[:2], bool)
        outside[max(0, y0 - py):y1 - py, max(0, x0 - px):x1 - px] = False
        assert outside.any() and (rgba[outside] == 0).all()  # colour and alpha
        assert np.array_equal(shown[outside], plate[outside])  # the plate, to the bit
        assert np.array_equal(over(rgba[..., :3], rgba[..., 3], plate), shown)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_a_window_job_resumes_to_the_frames_of_an_uninterrupted_run(window_bundle, tmp_path,
                                                                    backend):
    import threading

    from backend.transfer import TransferJob, run_transfer

    folder, bundle = window_bundle

    def job(out):
        return TransferJob(folder / "frames", bundle, out, fps=30.0, poses=folder / "poses.npz",
                           frame_stop=12, cpu_backend=backend)

    whole = run_transfer(job(tmp_path / "whole"))
    cancel = threading.Event()

    def report(stage, done, total):
        if stage == "generate" and done >= 5:
            cancel.set()

    from backend.errors import JobCancelled
    with pytest.raises(JobCancelled):
        run_transfer(job(tmp_path / "resumed"), report=report, cancel=cancel)
    resumed = run_transfer(job(tmp_path / "resumed"))
    for i in range(12):
        name = f"{i + 1:06d}.png"
        assert (whole.frames_dir / name).read_bytes() == (resumed.frames_dir / name).read_bytes()


@pytest.mark.slow
def test_the_window_works_with_a_local_enhancer(window_bundle, tmp_path):
    """The paper's schedule (global at half size, then the local enhancer, then the face GAN)
    with a window at each stage's size: what makes 1024x512 affordable on one GPU."""
    import shutil

    from backend.models.bundle import read_manifest
    from backend.transfer import TransferJob, run_transfer
    from training.export import export_bundle
    from training.options import preset
    from .helpers import train_on_one_thread

    folder, _ = window_bundle
    shutil.copytree(folder / "run" / "prepared", tmp_path / "run" / "prepared")
    opts = preset("tiny")  # global 32x16 -> local 64x32 -> face
    opts.loss.perceptual = "none"
    opts.model.matte, opts.model.window = "on", "on"
    opts.runtime.tensorboard = opts.runtime.progress = False
    opts.size = (128, 64)
    train_on_one_thread(tmp_path / "run", opts, 2)
    bundle = export_bundle(tmp_path / "run", tmp_path / "bundle")
    manifest = read_manifest(bundle)
    assert manifest.generator.n_local_enhancers == 1
    w, h = manifest.training.window.size
    assert w % 8 == 0 and h % 8 == 0 and w < 128  # the local enhancer's multiple
    result = run_transfer(TransferJob(folder / "frames", bundle, tmp_path / "job", fps=30.0,
                                      poses=folder / "poses.npz", frame_stop=3))
    assert result.frame_count == 3


@pytest.mark.slow
def test_the_window_of_the_demo_clip_holds_every_keypoint(window_bundle):
    """The demo performer walking about the room (a synthetic clip whose poses are known):
    every keypoint the label draws lies inside its frame's window, margin included."""
    from backend.models.bundle import read_manifest
    from backend.pose.track import PoseTrack

    folder, bundle = window_bundle
    manifest = read_manifest(bundle)
    track, layout, spec = PoseTrack.load(folder / "poses.npz"), manifest.letterbox, \
        manifest.training.window
    regions = spec.regions(track, layout)
    points = layout.apply_points(np.concatenate(
        [track.body, track.face, track.hands.reshape(len(track), -1, 3)], 1))
    centres = []
    for region, frame in zip(regions, points):
        seen = frame[frame[:, 2] > 0, :2]
        x0, y0, x1, y1 = region
        assert (seen[:, 0] >= x0 - 1).all() and (seen[:, 0] <= x1 + 1).all()
        assert (seen[:, 1] >= y0 - 1).all() and (seen[:, 1] <= y1 + 1).all()
        centres.append(seen.mean(axis=0))
    moved = np.ptp(np.array(centres)[:, 0])
    placed = np.ptp((regions[:, 0] + regions[:, 2]) / 2)
    assert moved > 4 and placed > 0.5 * moved  # the performer walks, and the window with them


def test_the_window_moves_on_gs_grid():
    """With ``step`` (G's size multiple) the window's corner lies on that grid of the canvas:
    G's convolutions repeat themselves exactly only under shifts of that size, and a window
    moving by single pixels made the person shimmer (flicker 3.78 -> 3.30 on target_taiji)."""
    boxes = moving_boxes()
    regions = WindowSpec((48, 80), margin=4.0, step=8).place(boxes, CANVAS)
    assert (regions[:, :2] % 8 == 0).all()
    assert len(set(regions[:, 0].tolist())) > 10  # it still follows the person
    assert WindowSpec.from_dict(WindowSpec((48, 80), 4.0, step=8).to_dict()).step == 8
    assert WindowSpec.from_dict({"size": [48, 80], "margin": 4.0}).step == 1
