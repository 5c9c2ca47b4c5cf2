"""Training building blocks: options and presets, letterbox, checkpoints, sampler, schedule,
prepare (cache, split) and the frame-pair dataset. Fast: no training here."""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import time

import numpy as np
import pytest
import torch

from backend.errors import FormatVersionError, InputError
from backend.labels import frame_mapping
from backend.models.images import to_image
from backend.target.face import face_centers
from backend.target.letterbox import Letterbox
from backend.target.prepared import PreparedRun
from backend.video.images import read_image
from training import checkpoint as ckpt
from training.data.dataset import EpochSampler, FrameSequenceDataset
from training.data.prepare import PrepareOptions, prepare
from training.data.split import time_split
from training.options import (PRESETS, TrainOptions, add_option_arguments,
                              apply_overrides, option_fields, preset)
from training.learning_rate import lr_factor

# --------------------------------------------------------------------------------------------
# Options and presets
# --------------------------------------------------------------------------------------------


def test_paper_defaults():
    opts = preset("paper-local")
    assert opts.size == (1024, 512) and opts.stage_size("global") == (512, 256)
    assert opts.schedule.stages == ("global", "local", "face")
    assert (opts.schedule.epochs_global, opts.schedule.epochs_local, opts.schedule.epochs_face) \
        == (5, 30, 5)
    assert (opts.optim.lr, opts.optim.beta1, opts.optim.beta2) == (2e-4, 0.5, 0.999)
    assert (opts.loss.lambda_feat, opts.loss.lambda_vgg, opts.loss.perceptual) == (10, 10, "vgg")
    assert (opts.model.ngf, opts.model.n_downsample_global, opts.model.n_blocks_global) == (64, 4, 9)
    assert (opts.model.num_D_global, opts.model.num_D_local) == (2, 3)
    assert opts.temporal.temporal == "paper" and opts.runtime.batch_size == 1
    assert preset("paper-global").size == (512, 256)
    assert preset("paper-global").stage_size("global") == (512, 256)
    for name in PRESETS:
        preset(name).validate()
    # The paper's generator paints whole frames with transposed convolutions, and no loss
    # beyond the paper's; the CPU preset lays the person over the plate where it can.
    for name in ("paper-global", "paper-local"):
        model, loss = preset(name).model, preset(name).loss
        assert (model.matte, model.upsample) == ("off", "transpose")
        assert loss.lambda_flicker == 0 and preset(name).with_reconstruction().loss.lambda_l1 == 0
    assert (preset("cpu-small").model.matte, preset("cpu-small").model.upsample) == \
        ("auto", "transpose")
    # cpu-medium: cpu-small's networks at 512x256, in a window that follows the person
    medium, small = preset("cpu-medium"), preset("cpu-small")
    assert medium.size == (512, 256) and medium.model.window == "auto"
    assert medium.model.generator(False) == small.model.generator(False)
    # cpu-large: the same networks in the window, the paper's coarse-to-fine at 1024x512
    large = preset("cpu-large")
    assert large.size == (1024, 512) and large.model.window == "auto"
    assert large.schedule.stages == ("global", "local", "face")
    assert large.stage_size("global") == (512, 256) and large.stage_size("local") == (1024, 512)
    assert large.model.generator(False) == small.model.generator(False)
    assert all(preset(name).model.window == "off" for name in PRESETS
               if name not in ("cpu-medium", "cpu-large"))


def test_without_a_perceptual_loss_the_l1_term_is_on_unless_set():
    opts = preset("cpu-small")
    assert opts.loss.lambda_l1 is None  # left to the run
    opts.loss.perceptual = "none"
    assert opts.with_reconstruction().loss.lambda_l1 == 10.0
    opts.loss.lambda_l1 = 0.0  # the user's choice stands
    assert opts.with_reconstruction().loss.lambda_l1 == 0.0
    assert preset("paper-global").with_reconstruction().loss.lambda_l1 == 0.0  # VGG: the paper's


def test_options_round_trip_and_overrides():
    parser = argparse.ArgumentParser()
    add_option_arguments(parser)
    args = parser.parse_args(["--ngf", "16", "--perceptual", "none", "--temporal", "chain",
                              "--chain-length", "4", "--stages", "global", "face",
                              "--size", "128x64", "--channels-last", "false"])
    opts = apply_overrides(preset("cpu-small"), args)
    assert opts.model.ngf == 16 and opts.loss.perceptual == "none"
    assert opts.temporal.temporal == "chain" and opts.sequence_length() == 4
    assert opts.schedule.stages == ("global", "face") and opts.size == (128, 64)
    assert opts.runtime.channels_last is False
    assert opts.model.n_blocks_global == preset("cpu-small").model.n_blocks_global  # untouched
    again = TrainOptions.from_dict(json.loads(json.dumps(opts.to_dict())))
    assert again == opts
    with pytest.raises(ValueError, match="unknown option"):
        TrainOptions.from_dict({"model": {"wings": 2}})


def test_invalid_options_are_rejected():
    opts = preset("tiny")
    opts.schedule.stages = ("local", "global")
    with pytest.raises(ValueError, match="order"):
        opts.validate()
    opts = preset("tiny")
    opts.size = (60, 30)  # not a multiple of the generator's 2**(2+1)
    with pytest.raises(ValueError, match="multiple"):
        opts.validate()


def test_a_saved_value_its_field_does_not_allow_is_refused_with_its_flag():
    """validate() checks each value against its field's statement, for a saved run's options
    too: the message names the flag to give and what it allows."""
    cases = [("temporal", "temporal", "fast",
              "--temporal must be one of paper, chain, noisy, none, got 'fast'"),
             ("runtime", "tensorboard", "yes", "--tensorboard must be true or false, got 'yes'"),
             ("runtime", "device", "tpu", "--device must be one of auto, cpu, cuda, mps or "
                                          "cuda:N (a GPU by number), got 'tpu'"),
             ("runtime", "workers", -1, "--workers must be an integer >= 0 and <= 256, got -1"),
             ("loss", "vgg_scale", 0.3, "--vgg-scale must be 1, 1/2, 1/4, ..., got 0.3"),
             ("schedule", "stages", ("global", "lunch"),
              "--stages must be one or more of global, local, face, got ('global', 'lunch')"),
             ("model", "window_size", "big", "--window-size must be auto or WxH")]
    for section, name, value, message in cases:
        opts = preset("tiny")
        setattr(getattr(opts, section), name, value)
        with pytest.raises(ValueError) as refused:
            opts.validate()
        assert str(refused.value).startswith(message), str(refused.value)
    ranges = {f.name: spec.range for _, f, spec in option_fields() if spec.range}
    assert ranges["workers"].allowed() == "an integer >= 0 and <= 256"  # a field's range by name


def test_options_of_earlier_versions_are_read_in_todays_words():
    saved = preset("tiny").to_dict()
    saved["runtime"]["num_workers"] = saved["runtime"].pop("workers")  # before --workers
    saved["runtime"]["amp"] = saved["runtime"].pop("precision")  # before --precision
    saved["runtime"]["amp"] = "off"
    opts = TrainOptions.from_dict(saved)
    assert (opts.runtime.workers, opts.runtime.precision) == (0, "fp32")
    opts.validate()


def test_every_training_flag_says_what_it_does_and_its_default(capsys):
    """``train --help``: a sentence per option, its default and the presets that differ."""
    from training.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--ngf N filters in the first layer of the global generator" in text
    assert "(default 64; cpu-small, cpu-medium, cpu-large: 16; tiny: 8)" in text
    assert "(default: 10 without a perceptual loss, 0 with VGG; the paper's 0" in text
    assert "--workers N processes that load" in text and "--num-workers" not in text
    for _section, field, spec in option_fields():
        assert len(spec.help.split()) >= 4 and "(paper:" not in spec.help, field.name


def test_learning_rate_schedule_is_pix2pixhd():
    # constant for the first half, then linear to zero at the end
    assert [lr_factor(s, 10, 0.5) for s in (0, 4, 5, 6, 9)] == [1.0, 1.0, 1.0, 0.8, 0.2]
    assert lr_factor(10, 10, 0.5) == 0.0


# --------------------------------------------------------------------------------------------
# Letterbox
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", [(1280, 720), (720, 1280), (604, 604), (1024, 512)])
def test_letterbox_matches_the_label_mapping(source):
    box = Letterbox.fit_into(source, (256, 128))
    m = frame_mapping(source, (256, 128), "letterbox")
    pts = np.array([[0, 0, 1], [source[0], source[1], 1], [10, 20, 0]], np.float32)
    out = box.apply_points(pts)
    assert np.allclose(out[:2, 0], pts[:2, 0] * m.sx + m.ox, atol=1e-4)
    assert np.allclose(out[:2, 1], pts[:2, 1] * m.sy + m.oy, atol=1e-4)
    assert tuple(out[2, :2]) == (0, 0)  # missing points stay missing
    image = np.full((source[1], source[0], 3), 200, np.uint8)
    canvas = box.apply(image)
    assert canvas.shape == (128, 256, 3)
    # the frame covers exactly the mapped rectangle (to the pixel), the rest is black
    (px, py), (cw, ch) = box.paste, box.content
    assert abs(px - m.ox) <= 0.5 and abs(py - m.oy) <= 0.5
    assert (canvas[py:py + ch, px:px + cw] == 200).all()
    assert canvas.sum() == 200 * 3 * cw * ch


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


def _some_state():
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters())
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    return {"net": net.state_dict(), "optim": opt.state_dict(), "rng": ckpt.capture_rng(),
            "step": 7, "pair": (1, 2), "nothing": None, "array": np.arange(5)}


def test_checkpoint_round_trip_and_rng(tmp_path):
    state = _some_state()
    path = ckpt.save_checkpoint(tmp_path, 7, state)
    loaded = ckpt.load_checkpoint(path)
    assert loaded["step"] == 7 and loaded["pair"] == (1, 2) and loaded["nothing"] is None
    assert np.array_equal(loaded["array"], np.arange(5))
    for k, v in state["net"].items():
        assert torch.equal(loaded["net"][k], v)
    moments = loaded["optim"]["state"][0]["exp_avg"]  # integer keys survive
    assert torch.equal(moments, state["optim"]["state"][0]["exp_avg"])
    ckpt.restore_rng(loaded["rng"])
    first = (random.random(), np.random.rand(), torch.rand(2))
    ckpt.restore_rng(state["rng"])
    second = (random.random(), np.random.rand(), torch.rand(2))
    assert first[:2] == second[:2] and torch.equal(first[2], second[2])


def test_checkpoints_rotate_and_latest(tmp_path):
    for step in (1, 2, 3):
        ckpt.save_checkpoint(tmp_path, step, {"step": step}, keep=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step_00000002", "step_00000003"]
    assert ckpt.latest_checkpoint(tmp_path).name == "step_00000003"
    (tmp_path / ckpt.LATEST_FILE).write_text("{broken")
    with pytest.warns(ckpt.DamagedPointerWarning, match="is damaged"):  # and says so
        assert ckpt.latest_checkpoint(tmp_path).name == "step_00000003"  # falls back to scanning
    assert not list(tmp_path.glob(".*tmp"))  # no temporary folders left


def test_corrupted_or_foreign_checkpoint_names_the_file(tmp_path):
    path = ckpt.save_checkpoint(tmp_path, 1, _some_state())
    tensors = path / ckpt.TENSORS_FILE
    data = bytearray(tensors.read_bytes())
    data[-10] ^= 0xFF
    tensors.write_bytes(bytes(data))
    with pytest.raises(InputError, match="damaged checkpoint") as err:
        ckpt.load_checkpoint(path)
    assert err.value.path == tensors
    tensors.write_bytes(b"")
    with pytest.raises(InputError, match=str(tensors)):
        ckpt.load_checkpoint(path)
    state = path / ckpt.STATE_FILE
    state.write_text(json.dumps({"kind": "something-else"}))
    with pytest.raises(InputError, match="not a training checkpoint") as err:
        ckpt.load_checkpoint(path)
    assert err.value.path == state
    doc = {"kind": ckpt.CHECKPOINT_KIND, "format_version": 99}
    state.write_text(json.dumps(doc))
    with pytest.raises(FormatVersionError):
        ckpt.load_checkpoint(path)
    state.write_text("not json")
    with pytest.raises(InputError, match="damaged checkpoint state"):
        ckpt.load_checkpoint(path)


# --------------------------------------------------------------------------------------------
# Sampler
# --------------------------------------------------------------------------------------------


def test_sampler_order_depends_on_seed_and_epoch_only():
    a, b = EpochSampler(10, seed=3), EpochSampler(10, seed=3)
    a.set_epoch(1)
    b.set_epoch(1)
    assert list(a) == list(b) and sorted(a) == list(range(10))
    b.set_epoch(2)
    assert list(a) != list(b)
    a.set_epoch(1, start=4)  # resuming in the middle of an epoch
    assert list(a) == _order(10, 3, 1)[4:] and len(a) == 6


def _order(n, seed, epoch, rank=0, world=1):
    s = EpochSampler(n, seed=seed, rank=rank, world=world)
    s.set_epoch(epoch)
    return list(s)


def test_sampler_splits_between_ranks():
    shares = [_order(11, 0, 0, rank, 3) for rank in range(3)]
    assert all(len(s) == 4 for s in shares)  # padded to equal shares
    assert set().union(*shares) == set(range(11))
    assert not set(shares[0]) & set(shares[1])


# --------------------------------------------------------------------------------------------
# Prepare and the dataset
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_clip(tmp_path_factory):
    """A 20-frame demo-performer clip (4:3, so it is letterboxed) and its exact track."""
    from backend.demo import make_demo_clip

    folder = tmp_path_factory.mktemp("demo")
    track = make_demo_clip(folder / "clip.mp4", motion="target", n_frames=20, fps=30,
                           size=(96, 72), progress=False)
    return folder / "clip.mp4", track


def test_time_split():
    assert time_split(100, 0.15) == ((0, 85), (85, 100))
    assert time_split(10, 0.0) == ((0, 10), (10, 10))
    with pytest.raises(ValueError):
        time_split(2, 0.5)


def test_face_centers_fall_back_to_neighbours(demo_clip):
    _, track = demo_clip
    gone = track.copy()
    gone.body[3:6] = 0
    gone.face[3:6] = 0
    centers = face_centers(gone)
    assert np.allclose(centers[3], track.body[2, 0, :2])  # the nearest frame's nose
    assert np.allclose(centers[0], track.body[0, 0, :2])


@pytest.mark.slow
def test_prepare_is_cached_and_letterboxed(demo_clip, tmp_path):
    video, track = demo_clip
    options = PrepareOptions(size=(64, 32), label_sizes=((32, 16), (64, 32)), holdout=0.15)
    t0 = time.perf_counter()
    prepared = prepare(video, tmp_path, options, track=track, progress=False)
    first = time.perf_counter() - t0
    assert prepared.n_frames == 20 and prepared.train_range == (0, 17)
    assert prepared.eval_range == (17, 20)
    assert prepared.canvas == (64, 32)
    frame = read_image(prepared.frame_path(0))
    assert frame.shape == (32, 64, 3)
    assert frame[:, :8].max() < 30  # 4:3 in 2:1: black bars left and right
    assert read_image(prepared.label_path(0, (32, 16))).shape == (16, 32, 3)
    stats = prepared.normalization()
    assert stats and json.dumps(stats)
    t0 = time.perf_counter()
    again = prepare(video, tmp_path, options, track=track, progress=False)
    assert time.perf_counter() - t0 < min(0.5, first)
    assert again.fingerprint == prepared.fingerprint
    # How many processes detect the poses does not make it another preparation.
    workers = prepare(video, tmp_path, dataclasses.replace(options, pose_workers=3), track=track,
                      progress=False)
    assert workers.fingerprint == prepared.fingerprint
    with pytest.raises(InputError, match="another video or other settings"):
        prepare(video, tmp_path, PrepareOptions(size=(64, 32), holdout=0.3,
                                                label_sizes=((64, 32),)), track=track,
                progress=False)
    redone = prepare(video, tmp_path, PrepareOptions(size=(64, 32), holdout=0.3,
                                                     label_sizes=((64, 32),)),
                     track=track, progress=False, force=True)
    assert redone.eval_range == (14, 20)


def test_a_run_prepared_by_an_earlier_version_is_not_prepared_again(demo_clip, tmp_path):
    """Earlier versions told videos apart by path, size and modification time; a run they
    prepared from the same inputs is still recognised (the add-on prepares again on resume)."""
    import hashlib

    video, track = demo_clip
    options = PrepareOptions(size=(64, 32), label_sizes=((64, 32),))
    prepared = prepare(video, tmp_path, options, track=track, progress=False)
    manifest_path = prepared.folder / "manifest.json"
    data = json.loads(manifest_path.read_text())
    st = video.stat()
    # The key exactly as the code before commit "target contract" computed it:
    old_options = {"size": [64, 32], "label_sizes": [[64, 32]], "holdout": 0.15, "start": 0,
                   "stop": 20, "frame_format": "jpg", "jpeg_quality": 95, "preset": None}
    key = {"video": {"path": str(video.resolve()), "bytes": st.st_size,
                     "mtime_ns": st.st_mtime_ns}, "start": 0, "stop": 20,
           "options": old_options, "label_style": prepared.manifest.label_style,
           "smoothing": None, "track": hashlib.sha256(track.to_bytes()).hexdigest(), "format": 1}
    old = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    data["fingerprint"], data["source"] = old, key["video"]
    manifest_path.write_text(json.dumps(data))
    frame = prepared.frame_path(0)
    before = frame.stat().st_mtime_ns
    again = prepare(video, tmp_path, options, track=track, progress=False)
    assert again.fingerprint == old and frame.stat().st_mtime_ns == before
    with pytest.raises(InputError, match="another video or other settings"):
        prepare(video, tmp_path, PrepareOptions(size=(64, 32), label_sizes=((64, 32),),
                                                holdout=0.3), track=track, progress=False)


@pytest.mark.slow
def test_dataset_gives_consecutive_frames(demo_clip, tmp_path):
    video, track = demo_clip
    prepared = prepare(video, tmp_path, PrepareOptions(size=(64, 32), label_sizes=((64, 32),)),
                       track=track, progress=False)
    ds = FrameSequenceDataset(prepared, (64, 32), "train", length=2, face_multiple=4)
    assert len(ds) == 16  # pairs (t-1, t) inside the 17 training frames
    sample = ds[3]
    assert sample["labels"].shape == (2, 3, 32, 64) and sample["images"].shape == (2, 3, 32, 64)
    assert int(sample["index"]) == 3
    assert sample["images"].min() >= -1 and sample["images"].max() <= 1
    assert torch.equal(sample["images"][1], ds[4]["images"][0])  # t of one is t-1 of the next
    x0, y0, x1, y1 = sample["face_boxes"][0].tolist()
    assert x1 - x0 == y1 - y0 and (x1 - x0) % 4 == 0
    assert np.array_equal(to_image(sample["images"][0]),
                          read_image(prepared.frame_path(3)))  # exact round trip of pixels
    held = FrameSequenceDataset(prepared, (64, 32), "eval", length=2)
    assert len(held) == 2 and held.first == 17
    with pytest.raises(InputError, match="labels at this size"):
        FrameSequenceDataset(prepared, (32, 16), "train")


def test_prepare_without_preparation_is_clear(tmp_path):
    with pytest.raises(InputError, match="no prepared data"):
        PreparedRun.open(tmp_path)


def test_local_stage_starts_from_the_global_stage():
    from training.stages import fresh_nets, nets_from_previous

    opts = preset("tiny")
    torch.manual_seed(1)
    old = fresh_nets(opts, "global")
    previous = {"G": old.generator.state_dict(), "D": old.discriminator.state_dict()}
    nets = nets_from_previous(opts, "local", previous)
    trunk = nets.generator.global_trunk.state_dict()
    for key, value in trunk.items():
        assert torch.equal(value, previous["G"][f"model.{key}"])
    # D: the global D's scale i judged the resolution the local D's scale i+1 judges
    assert len(nets.discriminator.scales) == 3
    for i, scale in enumerate(old.discriminator.scales):
        for key, value in scale.state_dict().items():
            assert torch.equal(nets.discriminator.scales[i + 1].state_dict()[key], value)
    face = nets_from_previous(opts, "face", {"G": nets.generator.state_dict(),
                                             "D": nets.discriminator.state_dict()})
    assert face.face_generator is not None and face.face_discriminator is not None
