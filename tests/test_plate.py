"""The target's background plate and person masks, the static-camera check, and the choice
of matte at training time."""

from __future__ import annotations

import numpy as np
import pytest

from backend.errors import InputError
from training.data.plate import MAX_DRIFT, estimate_background


def _room(rng: np.random.Generator, size=(96, 64)) -> np.ndarray:
    """A textured background (smooth, so a shift of it is measurable)."""
    w, h = size
    noise = rng.integers(0, 256, (h // 8 + 2, w // 8 + 2, 3)).astype(np.float32)
    import cv2

    return cv2.resize(noise, (w + 16, h + 16), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(
        np.uint8)


def _walk(room: np.ndarray, n: int, pan: float = 0.0):
    """Frames of a 16x40 "person" walking left to right in front of ``room`` (panned by
    ``pan`` pixels a frame), and their exact masks."""
    h, w = room.shape[0] - 16, room.shape[1] - 16
    frames, masks = [], []
    for t in range(n):
        shift = round(8 + pan * (t - n / 2)) % 16 if pan else 8
        frame = room[8:8 + h, shift:shift + w].copy()
        mask = np.zeros((h, w), np.float32)
        x = int(t * (w - 16) / (n - 1))
        frame[12:52, x:x + 16] = (200, 30, 30)
        mask[12:52, x:x + 16] = 1.0
        frames.append(frame)
        masks.append(mask)
    return frames, masks


def test_the_plate_is_the_background_wherever_the_person_ever_uncovered_it():
    room = _room(np.random.default_rng(0))
    frames, masks = _walk(room, 24)
    background = estimate_background(frames, masks)
    truth = room[8:-8, 8:-8]
    hidden = np.stack([m > 0 for m in masks])
    import cv2

    kernel = np.ones((9, 9), np.uint8)  # the plate's margin around the person (1/40 of 64 px)
    widened = np.stack([cv2.dilate(h.astype(np.uint8), kernel) > 0 for h in hidden])
    seen = (~widened).any(axis=0)
    assert seen.mean() > 0.95 and background.holes == pytest.approx(1 - seen.mean(), abs=1e-6)
    assert np.array_equal(background.plate[seen], truth[seen])  # exactly, where it was seen
    assert background.static and background.drift < 0.01 and background.residual < 1.0


def test_a_panning_camera_is_not_static():
    room = _room(np.random.default_rng(1))
    frames, masks = _walk(room, 24, pan=0.6)
    background = estimate_background(frames, masks)
    assert not background.static
    assert background.drift > MAX_DRIFT  # 0.6 px a frame over 24 frames: 14 px of 64
    assert background.verdict().startswith("moving camera")


# --------------------------------------------------------------------------------------------
# A prepared run of the demo performer: real segmentation, the plate of its room
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    from backend.demo import make_demo_clip
    from training.data.prepare import PrepareOptions, prepare

    folder = tmp_path_factory.mktemp("plate-run")
    track = make_demo_clip(folder / "frames", motion="target", n_frames=30, fps=30.0,
                           size=(128, 96), seed=2, progress=False)
    prepared = prepare(folder / "frames", folder / "run",
                       PrepareOptions(size=(64, 32), label_sizes=((64, 32),), preset="tiny"),
                       track=track, progress=False)
    return folder, prepared


def test_prepare_makes_masks_and_the_plate_of_the_demo_room(demo_run):
    from backend.demo.performer import background as room

    _, prepared = demo_run
    record = prepared.manifest.background
    assert record["static"] and record["verdict"].startswith("static camera")
    plate = prepared.plate().astype(int)
    truth = prepared.letterbox.apply(room((128, 96))).astype(int)
    content = prepared.letterbox.apply(np.full((96, 128), 255, np.uint8)) > 0
    error = np.abs(plate - truth).max(axis=-1)[content]
    assert np.median(error) <= 2 and (error <= 12).mean() > 0.9  # the room, not the performer
    masks = np.stack([prepared.mask(i) for i in range(prepared.n_frames)])
    assert masks.shape == (30, 32, 64) and 0.02 < (masks > 0.5).mean() < 0.4


def test_with_a_matte_g_is_asked_for_the_person_over_the_plate(demo_run):
    """The training frames of a matte: the real frame where the person's mask is, the plate
    where it is not (the frame's own grain is nothing a composite could show)."""
    import torch

    from training.data.dataset import FrameSequenceDataset

    _, prepared = demo_run
    size = prepared.canvas
    plain = FrameSequenceDataset(prepared, size)[3]
    sample = FrameSequenceDataset(prepared, size, matte=True)[3]
    mask = sample["masks"]
    assert torch.allclose(sample["images"], mask * plain["images"] + (1 - mask) * sample["plate"])
    away, person = (mask == 0).expand_as(plain["images"]), (mask == 1).expand_as(plain["images"])
    assert away.any() and person.any()
    assert torch.equal(sample["images"][away], sample["plate"].expand_as(away)[away])
    assert torch.equal(sample["images"][person], plain["images"][person])
    assert not torch.equal(sample["images"], plain["images"])


def test_a_run_prepared_without_masks_gets_them_on_the_next_prepare(demo_run, tmp_path):
    import shutil

    from training.data.prepare import PrepareOptions, prepare

    folder, prepared = demo_run
    copy = tmp_path / "run"
    shutil.copytree(prepared.folder.parent, copy)
    data = prepared.manifest.to_dict()
    data["background"] = None
    from backend.paths import atomic_write_json

    atomic_write_json(copy / "prepared" / "manifest.json", data)
    shutil.rmtree(copy / "prepared" / "masks")
    (copy / "prepared" / "plate.png").unlink()
    again = prepare(folder / "frames", copy, PrepareOptions(size=(64, 32),
                                                             label_sizes=((64, 32),),
                                                             preset="tiny"),
                    track=prepared.track(), progress=False)
    assert again.fingerprint == prepared.fingerprint and again.manifest.background["static"]
    assert again.mask_path(29).is_file() and again.plate_path.is_file()


def test_the_matte_follows_the_camera(demo_run, capsys):
    from dataclasses import replace

    from training.options import preset
    from training.resolve import resolve_matte

    _, prepared = demo_run
    opts = preset("tiny")
    opts.model.matte = "auto"
    assert resolve_matte(opts, prepared).model.matte == "on"
    moving = {**prepared.manifest.background, "static": False, "verdict": "moving camera: it pans"}
    panned = replace(prepared, manifest=replace(prepared.manifest, background=moving))
    assert resolve_matte(opts, panned).model.matte == "off"
    assert "moving camera: it pans; training the paper's full-frame generator" in \
        capsys.readouterr().err
    opts.model.matte = "on"
    with pytest.raises(InputError, match="moving camera.*--matte off"):
        resolve_matte(opts, panned)
    unprepared = replace(prepared, manifest=replace(prepared.manifest, background=None))
    with pytest.raises(InputError, match="without the person's masks"):
        resolve_matte(opts, unprepared)
    opts.model.matte = "off"
    assert resolve_matte(opts, panned).model.matte == "off"


def test_the_person_window_follows_the_matte(demo_run, capsys):
    from dataclasses import replace

    from training.options import preset
    from training.resolve import resolve_window

    _, prepared = demo_run
    opts = preset("tiny")
    opts.model.window = "auto"
    on = replace(opts, model=replace(opts.model, matte="on"))
    assert resolve_window(on, prepared).model.window == "on"
    assert resolve_window(opts, prepared).model.window == "off"  # matte off: the whole frame
    assert "no person window without the matte" in capsys.readouterr().err
    opts.model.window = "on"
    with pytest.raises(InputError, match="a person window needs the matte.*--window off"):
        resolve_window(opts, prepared)
    with pytest.raises(ValueError, match="a person window needs the matte"):
        opts.validate()


def test_the_matte_reaches_exactly_nothing_and_the_loss_still_pulls_past_the_clamps():
    import torch

    from backend.models.step import Backdrop, generate_frame

    plate = torch.full((1, 3, 4, 4), 0.25)
    # G's alpha channel: deep background, slightly unsure background, unsure person, person
    channel = torch.tensor([-0.95, -0.85, 0.85, 0.95]).repeat(4, 1).view(1, 1, 4, 4)
    colour = torch.rand(1, 3, 4, 4) * 2 - 1  # anything: it must not show where alpha is 0
    out = torch.cat([colour, channel], 1).requires_grad_()
    drawn = generate_frame(lambda _: out, None, torch.zeros(1, 3, 4, 4), None,
                           backdrop=Backdrop(plate))
    assert drawn.alpha[..., :2].eq(0).all() and drawn.alpha[..., 2:].eq(1).all()
    assert torch.equal(drawn.frame[..., :2], plate[..., :2])  # the plate, untouched
    assert torch.equal(drawn.frame[..., 2:], colour[..., 2:])
    # The matte loss compares the unclamped alpha: a background pixel keeps being pushed
    # deeper into the clamp, never back towards the edge where colour would show.
    drawn.soft_alpha.sum().backward()
    assert (out.grad[:, 3] > 0).all()


def test_with_a_matte_g_sees_the_previous_frame_minus_the_plate():
    """The room's static edges are not in G's previous-frame input: where the background
    showed, ``previous - plate`` is exactly 0, the same as the first frame's zeros."""
    import torch

    from backend.models.config import GeneratorConfig
    from backend.models.step import Backdrop, generate_frame
    from training.options import TrainOptions, preset

    plate = torch.rand(1, 3, 4, 4) * 2 - 1
    previous = plate.clone()
    previous[..., 1, 1] = 0.5  # the person, somewhere
    inputs = []

    def g(x):
        inputs.append(x)
        return torch.zeros(1, 4, 4, 4)

    label = torch.zeros(1, 3, 4, 4)
    generate_frame(g, None, label, previous, backdrop=Backdrop(plate, minus_plate=True))
    generate_frame(g, None, label, previous, backdrop=Backdrop(plate))
    seen = inputs[0][:, 3:]
    assert torch.count_nonzero(seen) <= 3
    assert torch.allclose(seen[..., 1, 1], 0.5 - plate[..., 1, 1])
    assert torch.equal(inputs[1][:, 3:], previous)  # the paper's generator: the frame itself
    with pytest.raises(ValueError, match="needs the plate"):
        generate_frame(g, None, label, previous, backdrop=Backdrop(minus_plate=True))
    opts = preset("cpu-small")
    opts.model.matte = "on"
    assert opts.model.generator(False).previous_input == "minus_plate"
    saved = opts.to_dict()
    del saved["model"]["previous_input"]  # a run of an earlier version: trained on frames
    assert TrainOptions.from_dict(saved).model.generator(False).previous_input == "frame"
    opts.model.matte = "off"
    assert opts.model.generator(False).previous_input == "frame"
    with pytest.raises(ValueError, match="needs a matte"):
        GeneratorConfig(previous_input="minus_plate")


@pytest.mark.slow
@pytest.mark.footage
@pytest.mark.parametrize("clip,stop,static", [("source_handheld.mp4", None, False),
                                              ("target_taiji.mp4", 120, True)])
def test_real_cameras_are_told_apart(footage, tmp_path, clip, stop, static):
    """A handheld camera following a dribbler, and a tripod in a room."""
    from training.data.prepare import PrepareOptions, prepare

    prepared = prepare(footage(clip), tmp_path / "run",
                       PrepareOptions(size=(128, 64), label_sizes=((128, 64),), stop=stop,
                                      preset="tiny"), progress=False)
    record = prepared.manifest.background
    assert record["static"] is static, record["verdict"]
    assert record["verdict"].startswith("static camera" if static else "moving camera")


@pytest.mark.slow
def test_a_model_with_a_matte_gives_the_person_alone(demo_run, tmp_path):
    """Train the tiny networks with a matte on the demo room for a few hundred steps, then ask
    for transparent frames: RGBA, the alpha 0 away from the performer and near 255 on
    them (the mask the segmentation found), and the frames over the plate are the frames a
    default job writes."""
    import shutil

    import cv2

    from backend.models.images import over
    from backend.transfer import TransferJob, run_transfer
    from backend.video.images import read_image
    from training.evaluation.methods import MATTE_THRESHOLD
    from training.export import export_bundle
    from training.options import preset
    from .helpers import train_on_one_thread

    folder, prepared = demo_run
    run = tmp_path / "run"
    shutil.copytree(prepared.folder, run / "prepared")
    opts = preset("tiny")
    opts.schedule.stages = ("global",)
    opts.loss.perceptual, opts.loss.lambda_l1 = "none", 10.0
    opts.model.matte = "on"
    opts.runtime.tensorboard = opts.runtime.progress = False
    train_on_one_thread(run, opts, 400)
    bundle = export_bundle(run, tmp_path / "bundle")
    assert (bundle / "plate.png").is_file()
    prepared.track().save(tmp_path / "poses.npz")
    jobs = {bg: run_transfer(TransferJob(folder / "frames", bundle, tmp_path / bg, fps=30.0,
                                         poses=tmp_path / "poses.npz", frame_stop=12,
                                         background=bg, cpu_backend="torch"))
            for bg in ("transparent", "target")}
    plate = prepared.letterbox.crop(cv2.resize(prepared.plate(), (64, 32)))
    inside, away, ious = [], [], []
    for i in range(12):
        rgba = read_image(jobs["transparent"].frames_dir / f"{i + 1:06d}.png", alpha=True)
        shown = read_image(jobs["target"].frames_dir / f"{i + 1:06d}.png")
        assert rgba.shape[2] == 4
        assert np.array_equal(over(rgba[..., :3], rgba[..., 3], plate), shown)
        person = prepared.letterbox.crop(prepared.mask(i)) >= 0.5
        near = cv2.dilate(person.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        alpha = rgba[..., 3]
        inside.append(np.median(alpha[person]))
        away.append(np.median(alpha[~near]))
        ious.append(np.logical_and(alpha >= MATTE_THRESHOLD, person).sum()
                    / np.logical_or(alpha >= MATTE_THRESHOLD, person).sum())
    assert np.median(away) == 0 and np.median(inside) >= 192, (away, inside)  # away: exactly 0
    assert np.mean(ious) > 0.45, ious  # 64x32 frames: a pixel of border is a large share
