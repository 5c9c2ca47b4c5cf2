"""The evaluation: metrics on known inputs, LPIPS and its weights, the report of a tiny model
trained on real footage (SSIM, LPIPS, flicker, poses found again, baseline, strips, resume)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from backend.errors import InputError
from backend.labels import LabelStyle
from backend.paths import cache_dir
from backend.pose.detector import HolisticConfig, detect_video
from backend.pose.track import PoseTrack
from backend.video import PngSequenceWriter, read_frame
from training.evaluation.image_metrics import Flicker, body_box, clip_box, crop, ssim
from training.evaluation.lpips import (CHANNELS, LPIPS, LpipsWeights, backbone_shapes,
                                       heads_shapes, load_lpips)
from training.evaluation.pose_metrics import pose_scores
from training.models.weights import WeightsUnavailable

from .helpers import footage_path

UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: refused at once


def noise_image(seed: int, size=(48, 64)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def smooth_image(seed: int, size=(96, 128)) -> np.ndarray:
    """Noise blurred into blobs: an image with structure for SSIM and LPIPS."""
    return cv2.GaussianBlur(noise_image(seed, size), (0, 0), 3)


@pytest.fixture(autouse=True)
def empty_torch_home(tmp_path, monkeypatch):
    """No real torch hub cache (nor the network) may provide weights by accident."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr("training.evaluation.lpips.ALEXNET_URL", UNREACHABLE + "alexnet-owt-7be5be79.pth")
    monkeypatch.setattr("training.evaluation.lpips.HEADS_URL", UNREACHABLE + "alex.pth")


# --- SSIM, regions, flicker --------------------------------------------------------------------


def test_ssim_is_one_for_identical_images_and_lower_otherwise():
    a = smooth_image(0)
    assert ssim(a, a.copy()) == pytest.approx(1.0)
    darker = (a * 0.7).astype(np.uint8)
    other = smooth_image(1)
    assert 0.0 < ssim(a, other) < ssim(a, darker) < 1.0
    assert math.isnan(ssim(a[:5, :5], a[:5, :5]))  # smaller than the 7x7 window
    with pytest.raises(ValueError, match="differ in size"):
        ssim(a, a[:-1])


def test_boxes_are_clipped_and_padded():
    assert clip_box((-3.2, 4.5, 20.1, 300), (100, 50)) == (0, 4, 21, 50)
    assert clip_box((120, 0, 130, 10), (100, 50)) is None
    xy = np.array([[10.0, 10.0], [30.0, 50.0]])
    assert body_box(xy, (100, 100), pad=0.1) == (6, 6, 34, 54)  # 10% of the 40 px height
    image = noise_image(2)
    assert crop(image, (1, 2, 5, 9)).shape == (7, 4, 3)
    assert crop(image, None) is None and crop(image, (5, 5, 5, 9)) is None


def test_flicker_is_zero_when_the_output_changes_as_the_real_video():
    frames = [smooth_image(k) // 2 for k in range(4)]
    steady = Flicker()  # brighter throughout, but changing exactly as the real frames
    for f in frames:
        steady.add(f + 40, f)
    assert steady.value == 0.0
    frozen = Flicker()  # an output that never moves while the real video changes
    for f in frames:
        frozen.add(frames[0], f)
    expected = np.mean([np.abs(frames[k].astype(int) - frames[k - 1]).mean() for k in (1, 2, 3)])
    assert frozen.value == pytest.approx(expected)
    assert math.isnan(Flicker().value)


# --- pose metrics ------------------------------------------------------------------------------


def random_track(n: int = 3, seed: int = 0) -> PoseTrack:
    rng = np.random.default_rng(seed)
    def part(*shape):
        a = rng.uniform(20, 200, (*shape, 3)).astype(np.float32)
        a[..., 2] = 0.9
        return a
    return PoseTrack(part(n, 25), part(n, 70), part(n, 2, 21), np.ones(n, bool), 30.0, (256, 256), {})


def test_pose_distance_is_zero_for_the_same_poses_and_the_shift_otherwise():
    given = random_track()
    same = pose_scores(given, given, LabelStyle())
    assert all(same[p].distance == 0 and same[p].missed == 0 for p in ("body", "face", "hands"))
    moved = PoseTrack(given.body.copy(), given.face.copy(), given.hands.copy(), given.detected,
                      30.0, given.size, {})
    for a in (moved.body, moved.face, moved.hands):
        a[..., 0] += 3.0
        a[..., 1] += 4.0
    shifted = pose_scores(given, moved, LabelStyle())
    assert all(shifted[p].distance == pytest.approx(5.0) for p in ("body", "face", "hands"))
    # keypoints lost on the output are missed, not distances
    moved.body[:, :5, 2] = 0.0
    moved.hands[1, 0, :, 2] = 0.0
    scores = pose_scores(given, moved, LabelStyle())
    assert scores["body"].missed_per_frame == pytest.approx(5.0)
    assert scores["hands"].missed == 21 and scores["body"].matched == 3 * 20
    assert scores["body"].to_dict()["distance_px"] == pytest.approx(5.0)


@pytest.mark.slow
@pytest.mark.footage
def test_detector_finds_a_shifted_image_shifted_by_as_much(footage, tmp_path):
    """The real detector on a real frame and on the same frame moved 24 px to the right."""
    frame = read_frame(footage("target_taiji.mp4"), 100)
    shift = np.float32([[1, 0, 24], [0, 1, 0]])
    moved = cv2.warpAffine(frame, shift, (frame.shape[1], frame.shape[0]),
                           borderMode=cv2.BORDER_REPLICATE)
    tracks = []
    for name, image in (("still", frame), ("moved", moved)):
        writer = PngSequenceWriter(tmp_path / name)
        for _ in range(3):
            writer.write(image)
        tracks.append(detect_video(tmp_path / name, HolisticConfig(), progress=False, fps=24))
    still, found = tracks
    assert still.detected.all() and found.detected.all()
    scores = pose_scores(still, found, LabelStyle())
    assert scores["body"].distance == pytest.approx(24.0, abs=2.5)
    assert scores["body"].missed_per_frame <= 1.0
    same = pose_scores(still, still, LabelStyle())
    assert same["body"].distance == 0.0


# --- LPIPS ------------------------------------------------------------------------------------


def random_lpips_files(folder: Path) -> LpipsWeights:
    """A torchvision-style AlexNet state dict (He-scaled noise, plus the classifier the loader
    ignores) and an lpips-style heads file, written with torch.save like the real ones."""
    gen = torch.Generator().manual_seed(3)
    backbone = {}
    for key, shape in backbone_shapes().items():
        fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
        backbone[key] = torch.randn(shape, generator=gen) * (math.sqrt(2 / fan_in) if len(shape) > 1 else 0.01)
    backbone["classifier.1.weight"] = torch.zeros(8, 8)
    heads = {key: torch.rand(shape, generator=gen) for key, shape in heads_shapes().items()}
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(backbone, folder / "alexnet-owt-7be5be79.pth")
    torch.save(heads, folder / "alex.pth")
    return LpipsWeights(folder / "alexnet-owt-7be5be79.pth", folder / "alex.pth")


def test_lpips_is_zero_for_identical_images_symmetric_and_grows_with_change(tmp_path):
    net = load_lpips(random_lpips_files(tmp_path))
    a, b = smooth_image(0), smooth_image(1)
    slightly = np.clip(a.astype(int) + noise_image(5, a.shape[:2]) // 16, 0, 255).astype(np.uint8)
    assert net.distance(a, a) == pytest.approx(0.0, abs=1e-7)
    assert net.distance(a, b) == pytest.approx(net.distance(b, a), rel=1e-5)
    assert 0 < net.distance(a, slightly) < net.distance(a, b)
    # face boxes are small: they are upsampled to AlexNet's smallest input, both alike
    assert net.distance(a[:16, :16], b[:16, :16]) > 0
    assert [h.weight.shape[1] for h in net.heads] == list(CHANNELS)


def test_lpips_weights_come_from_the_cache_or_an_installed_lpips_package(tmp_path, monkeypatch):
    files = random_lpips_files(tmp_path / "made")
    expected = load_lpips(files).distance(smooth_image(0), smooth_image(1))
    weights = cache_dir("weights")
    shutil.copy(files.backbone, weights / "alexnet-owt-7be5be79.pth")
    with pytest.raises(WeightsUnavailable) as err:  # no heads anywhere yet
        load_lpips(timeout=2)
    assert "--lpips-weights PATH" in str(err.value)
    package = tmp_path / "site" / "lpips"  # what `pip install lpips` leaves on disk
    (package / "weights" / "v0.1").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('needs torchvision')\n")
    shutil.copy(files.heads, package / "weights" / "v0.1" / "alex.pth")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    net = load_lpips(timeout=2)  # found without importing the package
    assert net.distance(smooth_image(0), smooth_image(1)) == pytest.approx(expected, rel=1e-6)


def test_lpips_unavailable_and_bad_files_say_what_is_wrong(tmp_path):
    with pytest.raises(WeightsUnavailable) as err:
        load_lpips(timeout=2)
    assert "--lpips-backbone PATH" in str(err.value) and "alexnet-owt-7be5be79.pth" in str(err.value)
    assert list(cache_dir("weights").iterdir()) == []
    files = random_lpips_files(tmp_path)
    wrong = tmp_path / "wrong.pth"
    torch.save({"lin0.model.1.weight": torch.zeros(1, 3, 1, 1)}, wrong)
    with pytest.raises(InputError, match="wrong.pth.*not LPIPS linear weights"):
        load_lpips(LpipsWeights(files.backbone, wrong))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="garbage.pth.*cannot read AlexNet weights"):
        load_lpips(LpipsWeights(garbage, files.heads))


def test_lpips_layers_are_torchvisions_alexnet():
    net = LPIPS()
    convs = [k for k in backbone_shapes() if k.endswith("weight")]
    assert convs == [f"features.{i}.weight" for i in (0, 3, 6, 8, 10)]
    assert backbone_shapes()["features.0.weight"] == (64, 3, 11, 11)
    with torch.no_grad():
        assert float(net(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64))) == 0.0


# --- the report for a tiny model on real footage --------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny model trained a few steps on the first 40 frames of target_taiji.mp4 at 128x64
    (the last 10 held out), and its bundle."""
    from training.data.prepare import PrepareOptions, prepare
    from training.export import export_bundle
    from training.options import preset
    from training.trainer import train

    video = footage_path("target_taiji.mp4")
    folder = tmp_path_factory.mktemp("eval-run")
    opts = preset("tiny")
    opts.size = (128, 64)
    opts.loss.perceptual = "none"
    opts.schedule.stages = ("global", "face")
    opts.runtime.tensorboard = False
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EVERYBODY_DANCE_CACHE", str(folder / "cache"))
        try:
            prepare(video, folder / "run", PrepareOptions(
                size=opts.size, label_sizes=tuple(opts.sizes_needed()), holdout=0.25, stop=40,
                preset="tiny"), progress=False)
            opts.runtime.progress = False
            train(folder / "run", opts, steps=12)
            export_bundle(folder / "run", folder / "bundle")
        finally:
            torch.set_num_threads(threads)
    return folder


@pytest.mark.slow
@pytest.mark.footage
def test_report_of_a_tiny_model_on_real_footage(tiny_run, tmp_path, monkeypatch):
    from training.cli import main

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "report"
    args = [str(tiny_run / "bundle"), str(tiny_run / "run"), "-o", str(out), "--strips", "2",
            "--no-progress"]
    assert main(["evaluate", *args]) == 0
    results = json.loads((out / "metrics.json").read_text())
    assert results["frames"] == [30, 40] and results["output_size"] == [114, 64]
    assert list(results["methods"]) == ["nearest neighbour", "ours", "ours, no face GAN"]
    # no LPIPS weights on this machine: "not available", never a number
    assert results["lpips"]["available"] is False and "--lpips-backbone" in results["lpips"]["reason"]
    report = (out / "report.md").read_text()
    assert "| nearest neighbour |" in report and "| real frames |" in report
    assert "LPIPS is not available" in report and "| not available |" in report
    for name, scores in results["methods"].items():
        full = scores["image"]["full"]
        assert 0 < full["ssim"] < 1 and full["lpips"] is None and full["frames"] == 10, name
        assert scores["flicker"] > 0
        assert set(scores["pose"]) == {"body", "face", "hands"}
        assert scores["pose"]["body"]["frames"] == 10
        assert len(list((Path(scores["job"]) / "frames").glob("*.png"))) == 10
    # the real frames: the detector finds the man again, close to his input poses
    real = results["real"]["pose"]["body"]
    assert real["matched"] > 10 * 15 and real["distance_px"] < 3.0
    # the baseline shows real training frames: its poses come back, nearly all of them
    nearest = results["methods"]["nearest neighbour"]["pose"]["body"]
    assert nearest["missed_per_frame"] < 3
    assert len(results["strips"]) == 2
    strip = cv2.imread(str(out / results["strips"][0]))
    assert strip.shape[1] == 5 * 114 + 4 * 2  # label | real | three methods

    # run again with LPIPS weights: the frames are not drawn again, LPIPS is now a number
    made = {n: (Path(s["job"]) / "frames" / "000001.png").stat().st_mtime_ns
            for n, s in results["methods"].items()}
    files = random_lpips_files(tmp_path / "lpips")
    assert main(["evaluate", *args, "--lpips-backbone", str(files.backbone),
                 "--lpips-weights", str(files.heads)]) == 0
    again = json.loads((out / "metrics.json").read_text())
    assert again["lpips"]["available"] is True
    for name, scores in again["methods"].items():
        assert (Path(scores["job"]) / "frames" / "000001.png").stat().st_mtime_ns == made[name]
        assert scores["image"]["full"]["ssim"] == results["methods"][name]["image"]["full"]["ssim"]
        assert scores["image"]["full"]["lpips"] > 0
    assert "| not available |" not in (out / "report.md").read_text()


@pytest.mark.slow
@pytest.mark.footage
def test_evaluate_refuses_a_bundle_of_another_shape(tiny_run, tmp_path):
    from training.evaluation import EvalOptions, evaluate

    other = tmp_path / "other"
    shutil.copytree(tiny_run / "bundle", other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["resolution"] = [64, 64]
    del manifest["training"]["letterbox"]  # (else the manifest disagrees with itself)
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="other.*64x64 frames, not of the shape"):
        evaluate(EvalOptions(tiny_run / "bundle", tiny_run / "run", tmp_path / "report",
                             compare=[("small", other)], progress=False))


@pytest.mark.slow
@pytest.mark.footage
def test_a_smaller_model_is_compared_upscaled(tiny_run, tmp_path):
    """A model of the same target at half the resolution draws at its size; its frames are
    resized (bicubic) to the evaluated size, and its rows say so."""
    from training.evaluation import EvalOptions, evaluate
    from training.export import export_bundle
    from training.options import preset
    from .helpers import train_on_one_thread

    run = tmp_path / "small-run"
    shutil.copytree(tiny_run / "run" / "prepared", run / "prepared")
    opts = preset("tiny")
    opts.size = (64, 32)
    opts.loss.perceptual = "none"
    opts.schedule.stages = ("global",)
    opts.runtime.tensorboard = opts.runtime.progress = False
    train_on_one_thread(run, opts, 4)
    small = export_bundle(run, tmp_path / "small")
    results = evaluate(EvalOptions(tiny_run / "bundle", tiny_run / "run", tmp_path / "report",
                                   compare=[("small", small)], baseline=False, lpips=False,
                                   strips=1, progress=False))
    name = "small (64x32, upscaled bicubic)"
    assert name in results["methods"]
    job = Path(results["methods"][name]["job"])
    drawn = cv2.imread(str(job / "frames" / "000001.png"))
    shown = cv2.imread(str(job / "upscaled" / "000001.png"))
    size = tuple(results["output_size"])
    assert (shown.shape[1], shown.shape[0]) == size and drawn.shape[1] < size[0]
    assert results["methods"][name]["image"]["full"]["ssim"] > 0


@pytest.mark.parametrize("names,problem", [
    (["a", "a"], "--compare 'a' is given twice"),  # was a ValueError traceback
    (["no temporal", "No-Temporal"],  # failed late, suggesting --overwrite (evaluate has none)
     "--compare 'No-Temporal' and 'no temporal' would share the folder methods/no_temporal"),
    (["OURS"], "--compare 'OURS' and 'ours' would share the folder methods/ours"),
])
def test_compare_names_that_clash_are_one_error_line_and_write_nothing(tmp_path, capsys, names,
                                                                       problem):
    from backend.demo.run import DEMO_BUNDLE
    from training.cli import main

    run = tmp_path / "run"
    (run / "prepared").mkdir(parents=True)
    (run / "prepared" / "manifest.json").write_text("{}")
    compare = [arg for name in names for arg in ("--compare", f"{name}={DEMO_BUNDLE}")]
    assert main(["evaluate", str(DEMO_BUNDLE), str(run), "-o", str(tmp_path / "report"),
                 *compare]) == 2
    assert capsys.readouterr().err == (f"error: {problem}; give each bundle a name of its own "
                                       f"(letters or digits that differ)\n")
    assert not (tmp_path / "report").exists()
