"""The add-on inside real Blenders: the bpy module (4.5) and, where installed, Blender 3.4.

Each test runs a scenario of tests/test_addon_blender_scenarios.py in a fresh Blender process
(Blender's state is global, and Blender must not share a process with torch) and checks what
it wrote. Tests skip with the reason where a Blender is missing:

* ``bpy``: ``pip install bpy==4.5.4`` into the project's venv (Python 3.11);
* ``blender``: Blender 3.4 on PATH (Debian: ``apt-get install blender``), plus ``xvfb-run``
  for the test that drives its user interface and saves the screenshot in docs/.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from .helpers import REPO

SCRIPT = Path(__file__).with_name("test_addon_blender_scenarios.py")
TIMEOUT = 300


# --------------------------------------------------------------------------------------------
# Which Blenders are here
# --------------------------------------------------------------------------------------------


def _blender_version(exe: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"Blender (\d+)\.(\d+)", out)
    return (int(match.group(1)), int(match.group(2))) if match else None


HAVE_BPY = importlib.util.find_spec("bpy") is not None  # found, not imported: see the docstring
BLENDER = shutil.which("blender")
BLENDER_VERSION = _blender_version(BLENDER) if BLENDER else None

needs_bpy = pytest.mark.skipif(not HAVE_BPY, reason="the bpy module is not installed "
                               "(pip install bpy==4.5.4 into the project's Python 3.11 venv)")
needs_blender = pytest.mark.skipif(BLENDER is None, reason="no 'blender' executable on PATH "
                                   "(Debian: apt-get install blender)")
# More Blenders to try, for development: DANCE_EXTRA_BPY=/venv-bpy-5.0/bin/python:/venv-4.2/bin/python
# (Pythons with another version of the bpy module installed).
EXTRA_BPY = [p for p in os.environ.get("DANCE_EXTRA_BPY", "").split(os.pathsep) if p]
BLENDERS = [pytest.param("bpy", marks=needs_bpy, id="bpy-4.5"),
            pytest.param("blender", marks=needs_blender,
                         id=f"blender-{'.'.join(map(str, BLENDER_VERSION or ()))}"),
            *(pytest.param(f"bpy:{python}", id=f"bpy-extra-{i}")
              for i, python in enumerate(EXTRA_BPY))]
BPY_MODULES = [b for b in BLENDERS if b.values[0] != "blender"]


# --------------------------------------------------------------------------------------------
# Inputs made once: clips of the demo performer and a tiny real model bundle
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict:
    import torch

    from backend.demo import make_demo_clip, target_motion
    from backend.labels import LabelStyle
    from backend.models import BundleManifest, GeneratorConfig, build_generator, save_bundle
    from backend.normalize import compute_stats

    folder = tmp_path_factory.mktemp("addon-assets")
    make_demo_clip(folder / "dancer.mp4", n_frames=12, fps=24.0, size=(128, 128), progress=False)
    make_demo_clip(folder / "dancer2.mp4", n_frames=8, fps=24.0, size=(128, 128), seed=3,
                   progress=False)
    make_demo_clip(folder / "frames", n_frames=10, fps=24.0, size=(64, 64), progress=False)
    make_demo_clip(folder / "wide.mp4", n_frames=12, fps=24.0, size=(256, 144), progress=False)
    torch.manual_seed(0)
    config = GeneratorConfig(ngf=8, n_downsample_global=2, n_blocks_global=2)
    stats = compute_stats(target_motion(60, fps=30.0, size=(128, 128)))
    manifest = BundleManifest(name="tiny-test-target", generator=config, resolution=(64, 32),
                              label_style=LabelStyle().to_dict(), normalization=stats.to_dict())
    save_bundle(folder / "bundle", manifest, build_generator(config))
    # A model with a matte whose alpha is 0 everywhere: its frames are all background.
    matte = GeneratorConfig(output_nc=4, ngf=8, n_downsample_global=2, n_blocks_global=2)
    generator = build_generator(matte)
    with torch.no_grad():
        generator.model[-2].bias[3] = -30.0  # the last convolution, alpha channel: tanh -> -1
    plate = np.full((32, 64, 3), (20, 160, 40), np.uint8)
    save_bundle(folder / "matte", replace(manifest, generator=matte), generator, plate=plate)
    # The same two models for a 2:1 target: their frames are the whole 64x32 canvas.
    wide = replace(manifest, normalization=compute_stats(
        target_motion(60, fps=30.0, size=(256, 128))).to_dict())
    save_bundle(folder / "wide", wide, build_generator(config))
    save_bundle(folder / "wide_matte", replace(wide, generator=matte), generator, plate=plate)
    return {"repo": str(REPO), "clip": str(folder / "dancer.mp4"),
            "clip2": str(folder / "dancer2.mp4"), "bundle": str(folder / "bundle"),
            "matte_bundle": str(folder / "matte"), "frames": str(folder / "frames"),
            "wide_clip": str(folder / "wide.mp4"), "wide_bundle": str(folder / "wide"),
            "wide_matte_bundle": str(folder / "wide_matte"), "backend_python": sys.executable}


def blender_env(home: Path) -> dict:
    """Keep Blender's user folders (preferences, add-ons, the add-on's data) in ``home``."""
    env = dict(os.environ)
    for key, sub in (("BLENDER_USER_RESOURCES", ""), ("BLENDER_USER_CONFIG", "config"),
                     ("BLENDER_USER_SCRIPTS", "scripts"), ("BLENDER_USER_DATAFILES", "datafiles"),
                     ("BLENDER_USER_EXTENSIONS", "extensions")):
        env[key] = str(home / sub)
    env.pop("PYTHONPATH", None)
    return env


def run_scenario(kind: str, scenario: str, cfg: dict, work: Path, home: Path | None = None,
                 factory: bool = True) -> dict:
    """Run ``scenario`` in a fresh Blender of ``kind``; returns its result.json."""
    work.mkdir(parents=True, exist_ok=True)
    cfg = {**cfg, "work": str(work)}
    config = work / f"{scenario}.json"
    config.write_text(json.dumps(cfg))
    if kind.startswith("bpy"):
        python = kind.partition(":")[2] or sys.executable
        command = [python, str(SCRIPT), scenario, str(config)]
    else:
        command = [BLENDER, "-b", *(["--factory-startup"] if factory else []),
                   "--python-exit-code", "1", "--python", str(SCRIPT), "--", scenario, str(config)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT,
                         env=blender_env(home or work / "home"), cwd=work)
    log = out.stdout + out.stderr
    assert out.returncode == 0 and f"SCENARIO {scenario} OK" in log, log[-6000:]
    result = work / "result.json"
    return json.loads(result.read_text()) if result.is_file() else {}


def built_zip(tmp_path: Path) -> Path:
    out = subprocess.run([sys.executable, str(REPO / "build.py"), "-o", str(tmp_path / "dist"),
                          "--no-validate"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    return next((tmp_path / "dist").glob("everybody_dance-*.zip"))


# --------------------------------------------------------------------------------------------
# Expected values for the strip of set_up_scene
# --------------------------------------------------------------------------------------------

SHOWN_TIMELINE = list(range(12, 18))  # frames 12..17
SHOWN_SOURCE = list(range(3, 9))  # content frame 1 cut hard, 2 hidden: 3..8
EXPECTED_SCALE = [1.0 + 0.2 * k for k in range(6)]  # keys 1.0 @12 -> 2.0 @17, linear
EXPECTED_OFFSET_X = [-0.1 + 0.1 * k for k in range(6)]  # keys -0.1 @12 -> 0.4 @17
RESULT_CHANNEL = 3  # channel 2 is taken at frames 14..19 by the colour strip


@pytest.mark.parametrize("kind", BLENDERS)
def test_register_and_unregister_twice(kind, assets, tmp_path):
    result = run_scenario(kind, "register", assets, tmp_path)
    assert result["rounds"] == ["blender_addon", "blender_addon"]
    assert result["backend_root"] == str(REPO)  # a source checkout uses the repository's
    assert Path(result["user_dir"]).is_relative_to(tmp_path / "home")


@pytest.mark.slow
@pytest.mark.parametrize("kind", BLENDERS)
def test_strip_becomes_a_job_with_its_frames_keys_and_place(kind, assets, tmp_path):
    result = run_scenario(kind, "job", assets, tmp_path)
    run, placement = result["run"], result["placement"]
    assert result["forms"] == {"type": "Run", "module": "worker.protocol", "json_reads_back": True}
    assert (run["frame_start"], run["frame_stop"]) == (SHOWN_SOURCE[0], SHOWN_SOURCE[-1] + 1)
    assert run["source"] == assets["clip"] and run["model"] == assets["bundle"]
    assert run["fps"] == 24.0 and run["face"] is True
    assert run["adjustments"]["scale"] == pytest.approx(EXPECTED_SCALE, abs=1e-5)
    assert run["adjustments"]["offset_x"] == pytest.approx(EXPECTED_OFFSET_X, abs=1e-5)
    assert run["adjustments"]["offset_y"] == pytest.approx(0.05)
    assert placement["channel"] == RESULT_CHANNEL
    assert placement["frame_start"] == SHOWN_TIMELINE[0]
    assert placement["job_frames"] == list(range(6))
    # Image strips: frames are numbered the way the backend orders the folder's images.
    image_run = result["image_run"]
    assert image_run["source"] == assets["frames"] and image_run["fps"] == 24.0
    assert (image_run["frame_start"], image_run["frame_stop"]) == (3, 10)


@pytest.mark.slow
@pytest.mark.parametrize("kind", BLENDERS)
def test_blender_shows_the_source_frames_the_job_covers(kind, assets, tmp_path):
    """Blender renders the trimmed strip; every rendered frame is, of all the clip's frames,
    closest to the one the add-on's frame mapping says it shows."""
    from backend.video import read_frames
    from backend.video.images import read_image

    result = run_scenario(kind, "render", assets, tmp_path)
    assert result["frames"] == SHOWN_TIMELINE and result["source_frames"] == SHOWN_SOURCE
    clip = np.stack(list(read_frames(assets["clip"]))).astype(np.float32)
    for frame, expected in zip(result["frames"], result["source_frames"]):
        rendered = read_image(tmp_path / f"render_{frame:04d}.png").astype(np.float32)
        errors = np.abs(clip - rendered[None]).mean(axis=(1, 2, 3))
        assert int(errors.argmin()) == expected, (frame, errors.round(2).tolist())


@pytest.mark.slow  # starts the backend worker (~15 s) and runs real jobs
@pytest.mark.parametrize("kind", BPY_MODULES)
def test_retarget_dance_makes_the_image_strip_with_a_real_worker(kind, assets, tmp_path):
    # (Blender 3.4 runs the worker in the batch and user-interface tests below.)
    result = run_scenario(kind, "retarget", assets, tmp_path)
    assert result["state"] == "done", result["message"]
    [strip] = result["results"]
    assert strip["type"] == "IMAGE" and strip["name"] == "dancer (dance)"
    assert strip["channel"] == RESULT_CHANNEL
    assert (strip["final_start"], strip["final_end"]) == (SHOWN_TIMELINE[0], SHOWN_TIMELINE[-1] + 1)
    assert strip["elements"] == [f"{k:06d}.png" for k in range(1, 7)]
    assert all((Path(strip["directory"]) / name).is_file() for name in strip["elements"])
    # The keyed adjustments arrived in the backend as one value per frame.
    job = json.loads((Path(result["job_dir"]) / "job.json").read_text())
    adjustments = job["parameters"]["adjustments"]
    assert adjustments["scale"] == pytest.approx(EXPECTED_SCALE, abs=1e-5)
    assert adjustments["offset_x"] == pytest.approx(EXPECTED_OFFSET_X, abs=1e-5)
    assert adjustments["offset_y"] == pytest.approx(0.05)
    assert (job["parameters"]["frame_start"], job["parameters"]["frame_stop"]) == (3, 9)


@pytest.mark.slow  # starts the backend worker (~15 s) and runs a job on a Ray cluster
@pytest.mark.parametrize("kind", BPY_MODULES[:1])
def test_retarget_dance_goes_to_the_cluster_of_the_preferences(kind, assets, ray_cluster,
                                                               tmp_path):
    result = run_scenario(kind, "retarget", {**assets, "cluster": ray_cluster}, tmp_path)
    assert result["state"] == "done", result["message"]
    [strip] = result["results"]
    assert strip["elements"] == [f"{k:06d}.png" for k in range(1, 7)]
    log = (Path(result["job_dir"]) / "log.txt").read_text()
    assert f"running on Ray cluster {ray_cluster}" in log


@pytest.mark.slow  # starts the backend worker (~15 s) and runs real jobs
@pytest.mark.parametrize("kind", BLENDERS)
def test_preview_poses_strip_appears_and_updates_after_a_keyframe_change(kind, assets, tmp_path):
    from backend.video import read_frames
    from backend.video.images import read_image

    result = run_scenario(kind, "preview", assets, tmp_path)
    assert result["states"] == ["done", "done", "done"], result["messages"]
    [first], [second] = result["first"], result["second"]
    shown_range = (SHOWN_TIMELINE[0], SHOWN_TIMELINE[-1] + 1)
    for strip in (first, second):  # one strip, updated in place, on its own channel
        assert (strip["name"], strip["source"]) == ("dancer (preview)", "dancer")
        assert strip["type"] == "IMAGE" and strip["channel"] == RESULT_CHANNEL
        assert (strip["final_start"], strip["final_end"]) == shown_range
        assert strip["elements"] == [f"{k:06d}.jpg" for k in range(1, 7)]
    shown = [Path(strip["directory"]) for strip in (first, second)]
    assert shown == [Path(d) / "frames" for d in result["previews"][:2]]
    assert Path(second["previous_media"]) == shown[0]  # kept for undo (until the next update)
    # Each preview sampled the keys when it started: scale 1.0 at frame 12 both times, then
    # 2.0 at frame 17, re-keyed to 0.5: the same first frame, another last one.
    first_made, second_made = result["made"][:2]
    assert first_made["scale"] == pytest.approx(EXPECTED_SCALE, abs=1e-5)
    assert (second_made["scale"][0], second_made["scale"][-1]) == (pytest.approx(1.0),
                                                                   pytest.approx(0.5))
    assert first_made["first"] == second_made["first"]
    assert first_made["last"] != second_made["last"]
    # Batch retargeting leaves the preview out; rendering hides it and shows it again after.
    assert result["batch_sources"] == ["dancer"]
    assert not result["after_render"][0]["mute"]
    rendered = next(read_frames(result["render"])).astype(np.float32)  # timeline frame 12
    source = list(read_frames(assets["clip"]))[SHOWN_SOURCE[0]].astype(np.float32)
    shown_first = read_image(shown[1] / "000001.jpg")  # what the preview strip shows at 12
    preview = cv2.resize(shown_first, rendered.shape[1::-1]).astype(np.float32)
    assert np.abs(rendered - source).mean() < 0.5 * np.abs(rendered - preview).mean()
    # A third preview: the strip keeps the second's frames for undo; the first's are deleted.
    [third] = result["third"]
    assert third["name"] == first["name"]
    assert Path(third["directory"]) == Path(result["previews"][2]) / "frames"
    assert Path(third["previous_media"]) == shown[1] and shown[1].is_dir()
    assert not shown[0].parent.exists()


@pytest.mark.slow  # starts the backend worker (~15 s) and runs real jobs
@pytest.mark.parametrize("kind", BLENDERS)
def test_retarget_again_replaces_the_result_strip_in_place_and_undo_restores_it(kind, assets,
                                                                                tmp_path):
    result = run_scenario(kind, "rerun", assets, tmp_path)
    assert result["states"] == ["done", "done"], result["messages"]
    # Regenerate only what changed: the second job started from the first one's folder and
    # kept the frames before the first changed one (timeline 12..14 of 12..17: 3 of 6); the
    # first folder is as it was (undo shows it).
    assert result["reuse"] == [None, result["job_dirs"][0]]
    first, second = result["frames"]
    assert first == result["first_frames"] and len(first) == len(second) == 6
    assert second[:3] == first[:3] and all(a != b for a, b in zip(first[3:], second[3:]))
    assert "3 of the 6 frames made before are kept" in result["log"], result["log"]
    [first], [second] = result["first"], result["second"]  # never a second result strip
    frames = [Path(d) / "frames" for d in result["job_dirs"]]
    assert [Path(first["directory"]), Path(second["directory"])] == frames
    kept = ("name", "channel", "final_start", "final_end", "elements", "blend_type",
            "blend_alpha", "modifiers", "source")
    assert {k: second[k] for k in kept} == {k: first[k] for k in kept}
    assert (second["name"], second["channel"], second["blend_type"], second["modifiers"]) == (
        "my dance", RESULT_CHANNEL, "ADD", ["grade"])
    assert second["blend_alpha"] == pytest.approx(0.6)
    assert result["undo"] == ["FINISHED"]
    [restored] = result["after_undo"]
    assert Path(restored["directory"]) == frames[0]
    assert {k: restored[k] for k in kept} == {k: first[k] for k in kept}


@pytest.mark.slow  # starts the backend worker (~15 s) and runs real jobs
@pytest.mark.parametrize("kind", BLENDERS)
def test_a_transparent_result_shows_the_channels_below_it(kind, assets, tmp_path):
    from backend.video.images import read_image

    result = run_scenario(kind, "composite", assets, tmp_path)
    assert result["state"] == "done", result["message"]
    assert result["background"] == "transparent"
    assert (result["blend"], result["alpha_mode"]) == ("ALPHA_OVER", "STRAIGHT")
    assert result["channel"] > result["blocker_channel"]  # the colour strip lies below it
    frames = sorted(Path(result["frames"]).glob("*.png"))
    rgba = read_image(frames[0], alpha=True)
    assert rgba.shape[2] == 4 and rgba[..., 3].max() == 0  # the dancer alone: here, nothing
    rendered = read_image(tmp_path / "composite.png").astype(int)
    colour = np.round(np.array(result["blocker_color"]) * 255).astype(int)
    assert np.abs(rendered.reshape(-1, 3) - colour).max() <= 2  # the colour strip, all over


def bands(scene_size: tuple[int, int], frame_size: tuple[int, int], inset: int = 2) -> np.ndarray:
    """Where a frame of ``frame_size`` fitted inside the scene leaves it uncovered (bool H x W),
    ``inset`` pixels away from the frame's edge (Blender filters across it)."""
    (sw, sh), (fw, fh) = scene_size, frame_size
    scale = min(sw / fw, sh / fh)
    w, h = fw * scale, fh * scale
    x0, y0 = (sw - w) / 2 - inset, (sh - h) / 2 - inset
    ys, xs = np.mgrid[0:sh, 0:sw]
    return (xs < x0) | (xs >= sw - x0) | (ys < y0) | (ys >= sh - y0)


def check_bands(work: Path, scene_size: tuple[int, int], frame_size: tuple[int, int],
                transparent: Path | None = None) -> None:
    """The renders of `scenario_bands`: the opaque result's bands are black where the source
    shows a picture; a transparent result (alpha 0) shows the source all over."""
    from backend.video.images import read_image

    source = read_image(work / "source.png").astype(int)
    opaque = read_image(work / "opaque.png").astype(int)
    band = bands(scene_size, frame_size)
    assert band.sum() > 0.05 * band.size  # a 2:1 frame in a 16:9 scene: two bands
    assert source[band].mean() > 40  # the source dancer's room is there to show through
    assert opaque[band].max() <= 2  # black: nothing of the strip below
    assert np.abs(opaque[~band] - source[~band]).mean() > 10  # the result covers the rest
    if transparent is not None:
        assert np.abs(read_image(transparent).astype(int) - source).max() <= 2


@pytest.mark.slow  # starts the backend worker (~15 s) and runs real jobs
@pytest.mark.parametrize("kind", BLENDERS)
def test_an_opaque_result_of_another_aspect_hides_the_strip_below_in_its_bands(kind, assets,
                                                                                tmp_path):
    """Issue 23: over a 2:1 result in a 16:9 scene, the source dancer's raised hands peeked
    into the band above it (Alpha Over, Blender's default blend)."""
    from backend.video.images import read_image

    result = run_scenario(kind, "bands", assets, tmp_path)
    assert [state for state, _ in result["states"]] == ["done"] * 3, result["states"]
    frame = read_image(Path(result["frame"]))
    assert frame.shape[:2] == (32, 64)  # the whole 2:1 canvas
    check_bands(tmp_path, tuple(result["scene_size"]), (64, 32), tmp_path / "transparent.png")
    # Replace for the opaque frames, Alpha Over for the dancer alone, then the editor's Add
    assert result["blends"] == ["REPLACE", "ALPHA_OVER", "ADD"]


@pytest.mark.slow  # starts the backend worker (~15 s) and runs real jobs
@pytest.mark.parametrize("kind", BPY_MODULES)
def test_batch_in_background_with_the_bpy_module(kind, assets, tmp_path):
    run_scenario(kind, "make_blend", assets, tmp_path)
    run_scenario(kind, "batch", assets, tmp_path)
    _check_batch(run_scenario(kind, "inspect", assets, tmp_path), tmp_path)


@pytest.mark.slow  # starts the backend worker (~15 s) and runs real jobs
@needs_blender
def test_batch_from_the_blender_command_line(assets, tmp_path):
    """The README's command: the installed add-on, ``blender -b project.blend --python-expr``."""
    home = tmp_path / "home"
    cfg = {**assets, "zip": str(built_zip(tmp_path))}
    run_scenario("blender", "make_blend", cfg, tmp_path, home=home, factory=False)
    # make_blend enabled the add-on from the zip; remember it in the user preferences.
    expr = ("import bpy; bpy.ops.sequencer.retarget_dance_batch(render=True); "
            "bpy.ops.wm.save_mainfile()")
    save_prefs = subprocess.run(
        [BLENDER, "-b", "--python-exit-code", "1", "--python-expr",
         "import addon_utils, bpy; addon_utils.enable('everybody_dance', default_set=True); "
         f"p = bpy.context.preferences.addons['everybody_dance'].preferences; "
         f"p.backend_python = {sys.executable!r}; p.device = 'cpu'; bpy.ops.wm.save_userpref()"],
        capture_output=True, text=True, env=blender_env(home), timeout=TIMEOUT)
    assert save_prefs.returncode == 0, save_prefs.stdout + save_prefs.stderr
    out = subprocess.run([BLENDER, "-b", str(tmp_path / "project.blend"), "--python-exit-code", "1",
                          "--python-expr", expr], capture_output=True, text=True,
                         env=blender_env(home), timeout=TIMEOUT)
    assert out.returncode == 0, (out.stdout + out.stderr)[-6000:]
    _check_batch(run_scenario("blender", "inspect", cfg, tmp_path, home=home, factory=False),
                 tmp_path)


def _check_batch(result: dict, work: Path) -> None:
    strips = sorted(result["results"], key=lambda s: s["final_start"])
    assert [s["name"] for s in strips] == ["dancer (dance)", "dancer2 (dance)"]
    assert [s["channel"] for s in strips] == [2, 2]
    assert [(s["final_start"], s["final_end"]) for s in strips] == [(12, 18), (25, 33)]
    assert [len(s["elements"]) for s in strips] == [6, 8]
    from backend.video import probe

    assert probe(work / "render.mp4").frame_count == 40  # the scene's frames 1..40


@pytest.mark.slow
@pytest.mark.parametrize("kind", BPY_MODULES)
def test_built_zip_installs_as_an_extension(kind, assets, tmp_path):
    cfg = {**assets, "zip": str(built_zip(tmp_path)), "as_extension": True}
    result = run_scenario(kind, "register", cfg, tmp_path)
    assert result["rounds"] == ["bl_ext.user_default.everybody_dance"] * 2
    installed = tmp_path / "home" / "extensions" / "user_default" / "everybody_dance"
    assert result["backend_root"] == str(installed / "_vendor")  # the bundled backend
    assert (installed / "_vendor" / "requirements.txt").is_file()
    assert Path(result["user_dir"]).is_dir() and "everybody_dance" in result["user_dir"]


XVFB = shutil.which("xvfb-run")
DOCS = REPO / "docs"


needs_display = pytest.mark.skipif(XVFB is None, reason="xvfb-run not found (Debian: apt-get "
                                   "install xvfb)")


def run_ui_scenario(scenario: str, assets: dict, tmp_path: Path) -> dict:
    """Run ``scenario`` in Blender 3.4 with a window (on a virtual display), the add-on
    installed from the built zip; returns its result.json."""
    from blender_addon.core.locations import demo_bundle

    # The demo performer where it ships (a real picture for the README), else the tiny model.
    cfg = {**assets, "zip": str(built_zip(tmp_path)), "work": str(tmp_path),
           "use_demo": demo_bundle() is not None}
    config = tmp_path / f"{scenario}.json"
    config.write_text(json.dumps(cfg))
    command = [XVFB, "-a", "-s", "-screen 0 1920x1300x24", BLENDER, "--factory-startup",
               "--app-template", "Video_Editing", "--enable-event-simulate",
               "--python", str(SCRIPT), "--", scenario, str(config)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT,
                         env=blender_env(tmp_path / "home"), cwd=tmp_path)
    log = out.stdout + out.stderr
    assert "SCENARIO screenshot OK" in log, log[-6000:]
    return json.loads((tmp_path / "result.json").read_text())


def check_screenshot(path: Path) -> None:
    from backend.video.images import read_image

    shot = read_image(path)
    assert shot.shape[0] > 600 and shot.shape[1] > 1000 and shot.std() > 10  # a real picture


def keep_screenshot(source: Path, name: str) -> None:
    """With UPDATE_SCREENSHOTS=1, copy a screenshot to docs/ (for the README)."""
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(source, DOCS / name)


@pytest.mark.slow  # starts the backend worker (~15 s) and runs real jobs
@needs_blender
@needs_display
def test_installed_zip_retargets_in_blenders_user_interface(assets, tmp_path):
    """Blender 3.4 with a window (on a virtual display): install the built zip, press Retarget
    Dance, let the timer bring the result in, and photograph the sequencer with the Dance tab.

    The screenshots are kept in the test's folder; with UPDATE_SCREENSHOTS=1 they are also
    copied to docs/ (addon_sequencer.png, addon_progress.png) for the README.
    """
    result = run_ui_scenario("screenshot", assets, tmp_path)
    assert result["state"] == "done", result["message"]
    [strip] = result["results"]
    assert strip["channel"] == 2 and (strip["final_start"], strip["final_end"]) == (12, 18)
    assert len(strip["elements"]) == 6
    check_screenshot(tmp_path / "screenshot.png")
    keep_screenshot(tmp_path / "screenshot.png", "addon_sequencer.png")
    if result["progress_shot"]:
        keep_screenshot(tmp_path / "screenshot_progress.png", "addon_progress.png")


@pytest.mark.slow  # starts the backend worker (~15 s) and runs real jobs
@needs_blender
@needs_display
def test_preview_poses_updates_in_place_in_blenders_user_interface(assets, tmp_path):
    """Blender 3.4 with a window: Preview Poses, re-key the scale, Preview Poses again. The
    timer puts the second preview into the same strip as an undo step of its own; the
    sequencer is photographed (docs/addon_preview.png with UPDATE_SCREENSHOTS=1), then Undo
    shows the first preview again, and Render leaves the preview out while it renders."""
    result = run_ui_scenario("screenshot_preview", assets, tmp_path)
    assert result["state"] == "done", result["message"]
    [first], [second] = result["shown"]
    kept = ("name", "channel", "final_start", "final_end", "elements")
    assert {k: second[k] for k in kept} == {k: first[k] for k in kept}
    assert (second["channel"], second["final_start"], second["final_end"]) == (2, 12, 18)
    assert Path(first["directory"]) != Path(second["directory"])
    check_screenshot(tmp_path / "screenshot_preview.png")
    keep_screenshot(tmp_path / "screenshot_preview.png", "addon_preview.png")
    assert result["undo"] == ["FINISHED"]
    [after_undo] = result["results"]
    assert Path(after_undo["directory"]) == Path(first["directory"])
    render = result["render"]  # muted while the render window rendered, shown again after
    assert render["started"] == ["FINISHED"] and render["muted"] == [True]
    assert [s["mute"] for s in result["after_render"]] == [False]
    from backend.video import probe

    assert probe(render["path"]).frame_count == 6  # frames 12..17


@pytest.mark.slow  # starts the backend worker (~15 s) and runs real jobs
@needs_blender
@needs_display
def test_a_2_to_1_result_in_a_16_to_9_scene_has_black_bands_in_blenders_window(assets, tmp_path):
    """Blender 3.4 with a window: Retarget Dance with a 2:1 model over a 16:9 dancer in a 16:9
    scene; the sequencer's render of frame 15 shows nothing of the dancer in the bands above
    and below the result (issue 23: their raised hands peeked in). The window is photographed
    (screenshot_bands.png in the test's folder)."""
    result = run_ui_scenario("screenshot_bands", assets, tmp_path)
    assert result["state"] == "done", result["message"]
    assert result["blend"] == "REPLACE"
    check_bands(tmp_path, tuple(result["scene_size"]), (64, 32))
    check_screenshot(tmp_path / "screenshot_bands.png")


@needs_bpy
@pytest.mark.slow
def test_training_from_blender_is_detached_cancellable_resumable_and_found_again(assets, tmp_path):
    import time

    from blender_addon.core import training_runs

    result = run_scenario("bpy", "train_start", assets, tmp_path)
    assert re.match(r"(global|local|face) \d+/\d+", result["summary_while_training"])
    assert result["train_args"] == ["--perceptual", "none"]
    # Blender has exited; the resumed training goes on by itself and finishes.
    run_dir = Path(result["run_dir"])
    deadline = time.monotonic() + TIMEOUT
    while (status := training_runs.read_status(run_dir)).state == "running":
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert status.state == "done", status.message
    assert status.pid == result["pid"]  # the process started by the Resume button
    reopened = run_scenario("bpy", "train_reopen", assets, tmp_path)
    assert reopened["state"] == "done" and reopened["name"] == "tiny test"
    assert reopened["model_path"] == str(run_dir / "bundle")
    assert reopened["bundle_name"] == "tiny test"
