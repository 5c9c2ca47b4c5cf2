"""Training end to end with the ``tiny`` preset: on the demo performer and on real footage,
exact resume, stopping on SIGTERM, the VGG weights rules, export and the bundle round trip."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from backend.errors import JobCancelled, InputError
from backend.models import LocalEnhancer, load_bundle
from backend.video.images import read_image
from training import checkpoint as ckpt
from training.data.dataset import FrameSequenceDataset
from backend.target.prepared import PreparedRun
from training.data.prepare import PrepareOptions, prepare
from training.distributed import setup
from training.heldout import heldout_report
from training.export import export_bundle
from training.models.vgg import VGG19Features, WeightsUnavailable
from training.options import TrainOptions, preset
from training.stages import fresh_nets
from training.step import Generation
from training.run_folder import load_run_options, stage_checkpoint
from training.trainer import train

from .helpers import REPO, new_run


def tiny(perceptual: str = "none", stages: tuple[str, ...] = ("global",)) -> TrainOptions:
    opts = preset("tiny")
    opts.loss.perceptual = perceptual
    opts.schedule.stages = stages
    opts.runtime.tensorboard = False
    opts.runtime.progress = False
    return opts


pytestmark = pytest.mark.usefixtures("one_thread")


def generator_error(prepared: PreparedRun, generator: torch.nn.Module, size) -> float:
    data = FrameSequenceDataset(prepared, size, "train", 1, 2)
    return heldout_report(Generation(generator), data, setup("cpu"), 8, rows=0)[0]


def finite(losses: dict) -> bool:
    return bool(losses) and all(math.isfinite(v) for v in losses.values())


# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_tiny_trains_every_stage_and_exports(prepared_demo, tmp_path):
    run = new_run(prepared_demo, tmp_path)
    opts = tiny(stages=("global", "local", "face"))
    opts.runtime.tensorboard = True
    prepared = PreparedRun.open(run)
    torch.manual_seed(opts.runtime.seed)  # the global stage's initial weights
    before = generator_error(prepared, fresh_nets(opts, "global").generator, (32, 16))

    [glob] = train(run, opts, stages=["global"], steps=40)
    assert finite(glob["losses"]) and "G_VGG" not in glob["losses"]
    after = generator_error(prepared, glob["nets"].generator, (32, 16))
    assert after < 0.8 * before, (before, after)

    local, face = train(run, opts, stages=["local", "face"], steps=3)
    assert finite(local["losses"]) and finite(face["losses"])
    assert {"G_GAN_face", "D_real_face", "D_fake_face"} <= set(face["losses"])
    assert isinstance(local["nets"].generator, LocalEnhancer)
    # the face stage leaves G as the local stage finished it
    for k, v in local["nets"].generator.state_dict().items():
        assert torch.equal(face["nets"].generator.state_dict()[k], v)
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "done" and status["stage"] == "face"
    assert status["last_checkpoint"] == "checkpoints/face/step_00000003"
    assert (run / "samples" / "global_step_00000040.png").is_file()
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))

    bundle = export_bundle(run, tmp_path / "bundle")
    loaded = load_bundle(bundle)
    assert loaded.manifest.resolution == (64, 32)
    assert loaded.manifest.normalization == prepared.normalization()
    assert loaded.manifest.label_style == prepared.manifest.label_style
    assert loaded.manifest.training.stage == "face"
    assert loaded.face_generator is not None
    # The first training frame (letterboxed into the canvas) is the bundle's picture of its target.
    picture = read_image(bundle / "target_frame.png")
    assert picture.shape == (32, 64, 3)
    first = read_image(prepared.frame_path(prepared.train_range[0]))
    expected = cv2.resize(first, (64, 32), interpolation=cv2.INTER_AREA)
    assert np.abs(picture.astype(int) - expected).max() <= 1
    for k, v in face["nets"].generator.state_dict().items():
        assert torch.equal(loaded.generator.state_dict()[k], v)
    for k, v in face["nets"].face_generator.state_dict().items():
        assert torch.equal(loaded.face_generator.state_dict()[k], v)
    x = torch.rand(1, 6, 32, 64) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(loaded.generator(x), face["nets"].generator.eval()(x))


@pytest.mark.slow
@pytest.mark.parametrize("temporal,precision", [("paper", "fp32"), ("noisy", "fp32"),
                                                ("paper", "bf16")])
def test_resume_continues_exactly(prepared_demo, tmp_path, temporal, precision):
    """N steps, stop, resume, N steps == 2N steps without a stop (crossing an epoch), at
    fp32 and under bf16 autocast."""
    opts = tiny()
    opts.temporal.temporal = temporal
    opts.runtime.precision = precision
    opts.runtime.batch_size = 2  # 19 pairs: 10 steps per epoch
    n = 6
    straight = new_run(prepared_demo, tmp_path, "straight")
    train(straight, opts, steps=2 * n)

    stopped = new_run(prepared_demo, tmp_path, "stopped")
    with pytest.raises(JobCancelled):
        train(stopped, opts, steps=2 * n, stop_at=n)
    assert json.loads((stopped / "status.json").read_text())["state"] == "cancelled"
    assert stage_checkpoint(stopped, "global").name == f"step_{n:08d}"
    train(stopped, opts, steps=2 * n, resume=True)

    a = ckpt.load_checkpoint(stage_checkpoint(straight, "global"))
    b = ckpt.load_checkpoint(stage_checkpoint(stopped, "global"))
    assert a["step"] == b["step"] == 2 * n and b["done"]
    for part in ("nets", "optim"):
        flat_a, flat_b = _tensors(a[part]), _tensors(b[part])
        assert flat_a.keys() == flat_b.keys()
        for key in flat_a:
            assert torch.allclose(flat_a[key], flat_b[key], rtol=1e-5, atol=1e-6), key


def _tensors(obj, prefix=""):
    if isinstance(obj, torch.Tensor):
        return {prefix: obj.float()}
    out = {}
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else []
    for k, v in items:
        out.update(_tensors(v, f"{prefix}/{k}"))
    return out


@pytest.mark.slow
def test_stop_file_and_callback_stop_with_a_checkpoint(prepared_demo, tmp_path):
    run = new_run(prepared_demo, tmp_path)
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        if len(calls) == 2:
            (run / "STOP").touch()  # what a user or the add-on does to stop a run
        return False

    with pytest.raises(JobCancelled):
        train(run, tiny(), steps=50, should_stop=should_stop)
    assert stage_checkpoint(run, "global").name == "step_00000003"
    with pytest.raises(JobCancelled):
        train(run, tiny(), steps=50, resume=True, should_stop=lambda: True)
    assert not (run / "STOP").exists()  # a new train removes the old request
    assert stage_checkpoint(run, "global").name == "step_00000004"
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "cancelled" and status["step"] == 4  # the step of the checkpoint


@pytest.mark.slow
def test_chain_mode_trains(prepared_demo, tmp_path):
    opts = tiny()
    opts.temporal.temporal = "chain"
    opts.temporal.chain_length = 3
    [result] = train(new_run(prepared_demo, tmp_path), opts, steps=2)
    assert finite(result["losses"])


@pytest.mark.slow
def test_no_temporal_ablation_trains_single_frames_and_transfer_keeps_them_apart(prepared_demo,
                                                                                  tmp_path):
    """temporal "none" (plain pix2pixHD): D judges (label, frame) alone, and the exported model
    is run on zeros for the previous frame, so a frame does not depend on the one before."""
    from backend.models import load_bundle
    from backend.runtime import Runtime
    from backend.target.letterbox import Letterbox
    from backend.transfer.generate import FrameGenerator

    run = new_run(prepared_demo, tmp_path)
    opts = tiny(stages=("global", "face"))
    opts.temporal.temporal = "none"
    assert opts.sequence_length() == 1
    glob, face = train(run, opts, steps=3)
    assert finite(glob["losses"]) and finite(face["losses"])
    first_conv = next(m for m in glob["nets"].discriminator.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.in_channels == 6
    bundle = load_bundle(export_bundle(run, tmp_path / "bundle"))
    assert bundle.manifest.training.temporal == "none"
    layout = Letterbox.fit_into((128, 64), bundle.manifest.resolution)
    make = FrameGenerator(bundle, Runtime.resolve("cpu"), layout, face=False)
    rng = np.random.default_rng(0)
    w, h = bundle.manifest.resolution
    a, b = (rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(2))
    make.reset()
    alone = make(b).color
    make.reset()
    make(a)
    assert np.array_equal(make(b).color, alone)  # after another frame: the same


@pytest.mark.slow
def test_existing_checkpoints_need_resume_and_damage_is_named(prepared_demo, tmp_path):
    run = new_run(prepared_demo, tmp_path)
    train(run, tiny(), steps=2)
    with pytest.raises(InputError, match="--resume"):
        train(run, tiny(), steps=4)
    latest = stage_checkpoint(run, "global")
    tensors = latest / ckpt.TENSORS_FILE
    tensors.write_bytes(tensors.read_bytes()[:-100])  # a truncated write
    with pytest.raises(InputError) as err:
        train(run, tiny(), steps=4, resume=True)
    assert str(tensors) in str(err.value)
    assert json.loads((run / "status.json").read_text())["state"] == "failed"


# --------------------------------------------------------------------------------------------
# The perceptual loss and its weights
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_missing_vgg_weights_stop_training_clearly(prepared_demo, tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)  # as on a machine with no internet
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    run = new_run(prepared_demo, tmp_path)
    with pytest.raises(WeightsUnavailable, match="--perceptual none") as err:
        train(run, tiny(perceptual="vgg"), steps=2)
    assert "--vgg-weights" in str(err.value)
    assert stage_checkpoint(run, "global") is None
    assert json.loads((run / "status.json").read_text())["state"] == "failed"
    [result] = train(run, tiny(perceptual="none"), steps=2)
    assert "G_VGG" not in result["losses"]


@pytest.mark.slow
def test_vgg_weights_file_gives_the_perceptual_loss(prepared_demo, tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "vgg19.safetensors"
    save_file({k: v.contiguous() for k, v in VGG19Features().state_dict().items()}, str(weights))
    opts = tiny(perceptual="vgg", stages=("global", "face"))
    opts.loss.vgg_weights = str(weights)
    results = train(new_run(prepared_demo, tmp_path), opts, steps=2)
    assert all(finite(r["losses"]) and r["losses"]["G_VGG"] > 0 for r in results)
    assert results[1]["losses"]["G_VGG_face"] > 0  # on 8x8 face crops, enlarged for VGG19


# --------------------------------------------------------------------------------------------
# The command line: stop on SIGTERM, resume
# --------------------------------------------------------------------------------------------


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "training", *args]


@pytest.mark.slow
def test_cli_sigterm_saves_then_resume(prepared_demo, tmp_path):
    run = new_run(prepared_demo, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(_cli("train", str(run), "--preset", "tiny", "--perceptual", "none",
                                 "--stages", "global", "--steps", "100000", "--no-progress",
                                 "--tensorboard", "false"),
                            cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    status_path = run / "status.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if status_path.is_file() and json.loads(status_path.read_text()).get("step", 0) >= 5:
            break
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    status = json.loads(status_path.read_text())
    assert status["state"] == "cancelled"
    saved = ckpt.load_checkpoint(stage_checkpoint(run, "global"))
    assert saved["step"] >= 5 and not saved["done"]

    done = subprocess.run(_cli("train", str(run), "--resume", "--steps", str(saved["step"] + 2),
                               "--no-progress"), cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(status_path.read_text())["state"] == "done"
    assert ckpt.load_checkpoint(stage_checkpoint(run, "global"))["step"] == saved["step"] + 2


# --------------------------------------------------------------------------------------------
# Real footage
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.footage
def test_tiny_learns_real_footage(footage, tmp_path):
    video = footage("target_taiji.mp4")
    opts = tiny()
    prepared = prepare(video, tmp_path / "run",
                       PrepareOptions(size=opts.size, label_sizes=tuple(opts.sizes_needed()),
                                      start=100, stop=140), progress=False)
    assert prepared.n_frames == 40 and prepared.manifest.detector
    torch.manual_seed(opts.runtime.seed)
    before = generator_error(prepared, fresh_nets(opts, "global").generator, opts.stage_size("global"))
    [result] = train(tmp_path / "run", opts, steps=40)
    assert finite(result["losses"])
    after = generator_error(prepared, result["nets"].generator, opts.stage_size("global"))
    assert after < 0.8 * before, (before, after)
    assert np.isfinite(after)


# --------------------------------------------------------------------------------------------
# Mixed precision (the CUDA code paths, exercised with CPU autocast)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype,matte", [(torch.bfloat16, "off"), (torch.float16, "off"),
                                         (torch.bfloat16, "on")])
def test_mixed_precision_steps(dtype, matte):
    from backend.runtime import Runtime, resolve_precision
    from training.stages import generator_param_groups, trainable_parameters, uses_local
    from training.step import Batch, Optimizers, TrainStep

    # conftest says the CPU has no native bf16: auto is fp32 there
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    runtime = Runtime(torch.device("cpu"), {torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype])
    opts = tiny(stages=("global", "face"))
    opts.model.matte = matte
    torch.manual_seed(0)
    for stage in opts.schedule.stages:
        nets = fresh_nets(opts, stage)
        if stage == "face":
            nets.generator.requires_grad_(False)
            nets.discriminator.requires_grad_(False)
        _, d_params = trainable_parameters(nets, stage)
        scaler = torch.amp.GradScaler("cpu", enabled=runtime.needs_scaler)
        optimizers = Optimizers(torch.optim.Adam(generator_param_groups(nets, stage)),
                                torch.optim.Adam(d_params), scaler)
        step = TrainStep(nets, stage, opts, runtime, optimizers, None, uses_local(opts, stage))
        w, h = opts.stage_size(stage)
        labels = [torch.rand(1, 3, h, w) * 2 - 1 for _ in range(2)]
        images = [torch.rand(1, 3, h, w) * 2 - 1 for _ in range(2)]
        masks = [torch.rand(1, 1, h, w) for _ in range(2)] if matte == "on" else None
        plate = torch.rand(1, 3, h, w) * 2 - 1 if matte == "on" else None
        losses = step(Batch(labels, images, [[(16, 0, 24, 8)]] * 2, masks, plate), 0)
        assert finite({k: float(v) for k, v in losses.items()})
        assert scaler.is_enabled() == (dtype == torch.float16)
        assert ("G_matte" in losses) == (matte == "on" and stage == "global")


@pytest.mark.slow
def test_l1_term_joins_the_generator_loss_when_asked(prepared_demo, tmp_path):
    opts = tiny()
    opts.loss.lambda_l1 = 10.0
    summary = train(new_run(prepared_demo, tmp_path), opts, steps=3)
    losses = summary[0]["losses"]
    assert finite(losses) and losses["G_L1"] == pytest.approx(10.0 * losses["L1"], rel=0.5)
    plain = tiny()
    plain.loss.lambda_l1 = 0.0  # the paper's: no L1 term (--perceptual none defaults to 10)
    summary = train(new_run(prepared_demo, tmp_path, "plain"), plain, steps=3)
    assert "G_L1" not in summary[0]["losses"]
    chosen = train(new_run(prepared_demo, tmp_path, "chosen"), tiny(), steps=3)
    assert "G_L1" in chosen[0]["losses"]  # left to the run: on without a perceptual loss


@pytest.mark.slow
def test_flicker_term_judges_the_change_between_frames_not_the_frames(prepared_demo, tmp_path):
    from training.step import _flicker

    real = [torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5)]
    shifted = [r + 0.3 for r in real]  # wrong colours, the right change
    assert float(_flicker(shifted, real)) == pytest.approx(0.0)
    still = [real[0], real[0]]  # right first frame, no change at all
    assert float(_flicker(still, real)) == pytest.approx(0.5)
    opts = tiny(stages=("global",))
    opts.loss.lambda_flicker = 10.0
    losses = train(new_run(prepared_demo, tmp_path), opts, steps=3)[0]["losses"]
    assert finite(losses) and losses["G_flicker"] > 0


# -- options that do not fit the networks or the run: refused before anything is written -------


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("args,problem", [
    (["--size", "63x31"], "--size 63x31: stage global runs at 31x15, whose sides must be "
                          "multiples of 4"),
    (["--batch-size", "500"], "--batch-size 500 is larger than the run's"),
    (["--vgg-scale", "0.3"], "--vgg-scale must be 1, 1/2, 1/4"),
    (["--matte", "on", "--window", "on", "--window-size", "8x8"],  # was a torch traceback
     "--window-size 8x8: stage global paints it at 4x4, and its generator needs at least 8x8 "
     "there; give at least 16x16"),
])
@pytest.mark.slow
def test_options_that_do_not_fit_are_one_error_line_and_write_nothing(
        prepared_demo, tmp_path, capsys, args, problem):
    from training.cli import main

    run = new_run(prepared_demo, tmp_path)
    before = _snapshot(run)
    assert main(["train", str(run), "--preset", "tiny", "--steps", "1", *args]) == 2
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("error:")] == \
        [line for line in err.splitlines() if line.strip()] and problem in err, err
    assert _snapshot(run) == before


@pytest.mark.slow
def test_a_resume_given_a_new_value_takes_it(prepared_demo, tmp_path, capsys):
    """A run saved with an unusable value (as earlier versions let through) is refused with
    the flag to give, and a resume that gives it trains with the new value."""
    from training.cli import main

    run = new_run(prepared_demo, tmp_path)
    common = ["train", str(run), "--preset", "tiny", "--perceptual", "none", "--stage",
              "global", "--no-progress", "--tensorboard", "false"]
    assert main(common + ["--steps", "1"]) == 0
    saved = json.loads((run / "train_options.json").read_text())
    saved["optim"]["lr"] = 1e308
    (run / "train_options.json").write_text(json.dumps(saved))
    capsys.readouterr()
    assert main(["train", str(run), "--resume", "--steps", "2", "--no-progress"]) == 2
    assert "error: --lr must be a number > 0 and <= 1, got 1e+308" in capsys.readouterr().err
    assert main(["train", str(run), "--resume", "--steps", "2", "--no-progress", "--lr",
                 "1e-4", "--beta1", "0.6"]) == 0
    saved = json.loads((run / "train_options.json").read_text())
    assert (saved["optim"]["lr"], saved["optim"]["beta1"]) == (1e-4, 0.6)


# --------------------------------------------------------------------------------------------
# Precision auto: the CPU's fastest, recorded with the run
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("native,expected", [("1", "bf16"), ("0", "fp32")])
def test_auto_precision_is_the_cpus_fastest_and_the_run_records_it(prepared_demo, tmp_path,
                                                                   monkeypatch, native, expected):
    from backend.runtime import CPU_BF16_ENV

    monkeypatch.setenv(CPU_BF16_ENV, native)  # a CPU with (1) or without (0) native bf16
    run = new_run(prepared_demo, tmp_path)
    opts = tiny()
    assert opts.runtime.precision == "auto"
    train(run, opts, steps=2)
    saved = json.loads((run / "train_options.json").read_text())
    assert saved["runtime"]["precision"] == expected
    assert load_run_options(run).runtime.precision == expected  # what a resume runs at


def test_a_run_of_an_earlier_version_resumes_at_fp32_on_a_bf16_cpu(prepared_demo, tmp_path,
                                                                    monkeypatch):
    """Its options say "auto", which meant fp32 on the CPU: the resume stays exact."""
    from backend.runtime import CPU_BF16_ENV

    monkeypatch.setenv(CPU_BF16_ENV, "1")
    opts = tiny()
    opts.runtime.precision = "fp32"
    straight = new_run(prepared_demo, tmp_path, "straight")
    train(straight, opts, steps=4)
    old = new_run(prepared_demo, tmp_path, "old")
    with pytest.raises(JobCancelled):
        train(old, opts, steps=4, stop_at=2)
    path = old / "train_options.json"
    saved = json.loads(path.read_text())
    saved["runtime"]["precision"] = "auto"  # as versions before the record wrote it
    path.write_text(json.dumps(saved))
    train(old, load_run_options(old), steps=4, resume=True)
    assert json.loads(path.read_text())["runtime"]["precision"] == "fp32"
    a = ckpt.load_checkpoint(stage_checkpoint(straight, "global"))
    b = ckpt.load_checkpoint(stage_checkpoint(old, "global"))
    flat_a, flat_b = _tensors(a["nets"]), _tensors(b["nets"])
    assert all(torch.equal(flat_a[k], flat_b[k]) for k in flat_a)


# -- one process in a run at a time; a refused command writes nothing (issue 25) --------------


def test_a_second_training_on_a_busy_run_is_refused_and_the_first_keeps_its_options_and_bundle(
        prepared_demo, tmp_path, capsys):
    """Before, both reported "300/300 steps", and the second's options and bundle replaced
    the first's."""
    from training.cli import main

    run = new_run(prepared_demo, tmp_path)
    common = ["--preset", "tiny", "--perceptual", "none", "--stages", "global", "--no-progress",
              "--tensorboard", "false"]
    assert main(["train", str(run), *common, "--steps", "1"]) == 0
    assert main(["export", str(run), "-o", str(run / "bundle")]) == 0
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(_cli("train", str(run), "--resume", "--steps", "100000",
                                  "--no-progress"), cwd=REPO, env=env, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 120
        while json.loads((run / "status.json").read_text()).get("step", 0) < 2:
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.1)
        first.send_signal(signal.SIGSTOP)  # it holds the run, whatever it is doing
        kept = {name: _snapshot(run / name) if (run / name).is_dir()
                else (run / name).read_bytes() for name in ("train_options.json", "bundle")}
        capsys.readouterr()
        try:
            for argv in (["train", str(run), *common, "--ngf", "4", "--steps", "300"],
                         ["train", str(run), "--resume", "--steps", "300", "--no-progress"],
                         ["export", str(run), "-o", str(run / "bundle")],
                         ["prepare", str(prepared_demo.parent / "clip.mp4"), "-o", str(run),
                          "--preset", "tiny", "--force"]):
                assert main(argv) == 2, argv
                assert capsys.readouterr().err.strip() == (
                    f"error: {run}: is in use by another process (pid {first.pid}) working in "
                    f"it; wait for it to finish, or cancel it")
        finally:
            first.send_signal(signal.SIGCONT)
        assert {name: _snapshot(run / name) if (run / name).is_dir()
                else (run / name).read_bytes() for name in kept} == kept
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 130, err
    assert json.loads((run / "train_options.json").read_text())["model"]["ngf"] == 8


@pytest.mark.parametrize("flag,value,own", [("--window-size", "32x16", "auto"),
                                            ("--ngf", "4", "8")])
def test_a_refused_resume_writes_nothing_and_names_the_options_that_differ(
        prepared_demo, tmp_path, capsys, flag, value, own):
    """Before, the refused resume rewrote train_options.json, so that the next plain
    --resume was refused too, with a message naming no option."""
    from training.cli import main

    run = new_run(prepared_demo, tmp_path)
    assert main(["train", str(run), "--preset", "tiny", "--perceptual", "none", "--stages",
                 "global", "--no-progress", "--tensorboard", "false", "--steps", "1"]) == 0
    before = _snapshot(run)
    capsys.readouterr()
    assert main(["train", str(run), "--resume", "--steps", "2", "--no-progress", flag,
                 value]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert (f"was trained with other network options than {flag} {value}; resume with the "
            f"run's own ({flag} {own}), or train these options in a new run folder") in err
    assert _snapshot(run) == before
    assert main(["train", str(run), "--resume", "--steps", "2", "--no-progress"]) == 0


def test_a_diverging_stage_stops_keeps_its_last_good_checkpoint_and_resumes(prepared_demo,
                                                                           tmp_path, capsys):
    """--lr 1: G's loss grows from 14 to 34000 at the second step. Before, it trained on to
    garbage without a word."""
    from training.cli import main

    run = new_run(prepared_demo, tmp_path)
    common = ["--no-progress", "--tensorboard", "false", "--checkpoint-every", "1"]
    assert main(["train", str(run), "--preset", "tiny", "--perceptual", "none", "--stages",
                 "global", "--steps", "60", "--lr", "1", *common]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {run}: stage global diverged at step 2: G's loss grew from ")
    assert ("more than 100 times; --lr 1 is likely too large. Training stopped and its last "
            "good checkpoint (step_00000001) is kept: train again with --resume and a smaller "
            "--lr (the paper's is 0.0002)") in err and "\n" not in err
    assert ckpt.load_checkpoint(stage_checkpoint(run, "global"))["step"] == 1
    assert json.loads((run / "status.json").read_text())["state"] == "failed"
    assert main(["train", str(run), "--resume", "--lr", "0.0002", "--steps", "4",
                 *common]) == 0
    saved = ckpt.load_checkpoint(stage_checkpoint(run, "global"))
    assert saved["step"] == 4 and saved["done"]


def test_a_loss_that_is_not_finite_or_grows_a_hundredfold_is_divergence():
    from training.divergence import DivergenceWatch

    watch = DivergenceWatch(1)
    assert watch.problem({"G_total": 10.0, "D_real": 1.0}, 1) is None
    assert watch.problem({"G_total": 900.0, "D_real": 1.0}, 2) is None
    assert watch.problem({"G_total": 5.0, "D_real": 1.0}, 3) is None
    assert watch.problem({"G_total": 501.0}, 4) == \
        "G's loss grew from 5 (step 3) to 501, more than 100 times"
    assert watch.problem({"G_total": 5.0, "D_real": math.nan}, 5) == "D_real is not finite"


@pytest.mark.parametrize("precision", ["tensorflow", None])
def test_a_train_options_json_with_an_unknown_precision_is_refused_naming_the_file(
        prepared_demo, tmp_path, capsys, precision):
    """Identity or nothing (issue 25): never a silent choice of another precision."""
    from training.cli import main

    run = new_run(prepared_demo, tmp_path)
    assert main(["train", str(run), "--preset", "tiny", "--perceptual", "none", "--stages",
                 "global", "--steps", "1", "--no-progress", "--tensorboard", "false"]) == 0
    path = run / "train_options.json"
    saved = json.loads(path.read_text())
    saved["runtime"]["precision"] = precision
    path.write_text(json.dumps(saved))
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["train", str(run), "--resume", "--steps", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --precision must be one of auto, fp32, bf16, fp16, got ")
    assert f"(in {path}: give the flag to resume with another value" in err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
