"""The training-step and comparison benchmarks run end to end and report sound figures.

Each script runs as a user would start it (a subprocess, the smallest settings, the ``tiny``
preset); the tests check what it writes, never how fast anything was.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .helpers import REPO

pytestmark = pytest.mark.slow


def run_script(name: str, args: list[str], out: Path) -> tuple[dict, str]:
    """Run benchmarks/``name`` with ``args``; (its JSON, its stdout)."""
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / name), *args,
                           "--json", str(out)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text()), done.stdout


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def check_machine_line(results: dict, stdout: str) -> None:
    first = stdout.splitlines()[0]
    assert first.startswith("machine:")
    gpu = results["machine"]["gpu"]
    assert (gpu in first) if gpu else ("no GPU" in first)


@pytest.fixture(scope="module")
def train_figures(tmp_path_factory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench") / "train.json"
    return run_script("bench_train.py", ["--presets", "tiny", "--steps", "2", "--warmup", "1"],
                      out)


@pytest.fixture(scope="module")
def compare_figures(tmp_path_factory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench") / "compare.json"
    return run_script("bench_compare.py", ["--presets", "tiny", "--rounds", "2", "--runs", "2"],
                      out)


def test_train_benchmark_times_every_stage_of_the_preset(train_figures):
    results, stdout = train_figures
    check_machine_line(results, stdout)
    assert results["perceptual"] == "none"
    assert set(results["steps"]) == {"tiny/global", "tiny/local", "tiny/face"}
    for key, r in results["steps"].items():
        assert r["steps"] == 2 and len(r["times_s"]) == 2 and r["warmup"] == 1
        for figure in ("median_s", "min_s", "steps_per_s", "peak_rss_mb", "baseline_rss_mb"):
            assert positive(r[figure]), (key, figure, r[figure])
        assert r["min_s"] <= r["median_s"]
        assert r["steps_per_s"] == pytest.approx(1 / r["median_s"], rel=0.01)
        assert r["peak_rss_mb"] >= r["baseline_rss_mb"]
        on_gpu = torch.cuda.is_available()
        assert r["device"].startswith("cuda" if on_gpu else "cpu")
        assert r["precision"] in (("bf16", "fp16") if on_gpu else ("fp32",))
        assert (r["cuda_peak_mb"] is not None) == on_gpu
        assert r["losses"] and all(math.isfinite(v) for v in r["losses"].values())
    # the stage's own sizes (the tiny global stage runs at half the local one's)
    assert results["steps"]["tiny/global"]["size"] == "32x16"
    assert results["steps"]["tiny/local"]["size"] == "64x32"
    assert "G_GAN_face" in results["steps"]["tiny/face"]["losses"]  # the face stage's losses
    for stage in ("global", "local", "face"):  # a printed row per stage
        assert re.search(rf"^\s*tiny\s+{stage}\s+\d+x\d+", stdout, re.MULTILINE)


def test_train_benchmark_includes_vgg_when_given_weights(tmp_path):
    from .helpers import random_vgg_state

    weights = tmp_path / "vgg19-random.pth"
    torch.save(random_vgg_state(), weights)
    results, _ = run_script("bench_train.py", ["--presets", "tiny", "--stages", "global",
                                               "--steps", "1", "--vgg-weights", str(weights)],
                            tmp_path / "train.json")
    assert results["perceptual"] == "vgg"
    assert list(results["steps"]) == ["tiny/global"]
    r = results["steps"]["tiny/global"]
    assert r["perceptual"] == "vgg" and math.isfinite(r["losses"]["G_VGG"])
    assert positive(r["median_s"])


def test_compare_benchmark_reports_ours_plain_and_their_ratio(compare_figures):
    results, stdout = compare_figures
    check_machine_line(results, stdout)
    r = results["presets"]["tiny"]
    assert r["size"] == "64x32" and r["rounds"] == 2 and r["runs"] == 2
    for method in ("ours", "plain"):
        for figure in ("median_ms", "min_ms", "fps"):
            assert positive(r[method][figure]), (method, figure)
        assert r[method]["min_ms"] <= r[method]["median_ms"]
    assert r["speedup"] == pytest.approx(r["plain"]["median_ms"] / r["ours"]["median_ms"],
                                         rel=0.01)
    assert positive(r["peak_rss_mb"])
    assert "eager fp32" in r["plain"]["what"]
    from backend.onnx.runtime import onnx_available

    if torch.cuda.is_available():
        assert r["backend"] == "torch" and "channels_last" in r["ours"]["what"]
        assert r["precision"] in ("bf16", "fp16") and r["max_abs_diff"] < 0.25
    else:
        assert r["backend"] == ("onnx" if onnx_available() else "torch")
        if r["backend"] == "onnx":
            assert r["ours"]["what"].startswith("ONNX Runtime")
        assert r["precision"] == "fp32" and r["max_abs_diff"] < 1e-3  # the same weights
    assert "plain / ours" in stdout


def test_summaries_name_every_figure(train_figures, compare_figures):
    from benchmarks import bench_compare, bench_train

    train_rows = bench_train.summary(train_figures[0])
    assert [row[0] for row in train_rows] == [f"train step tiny/{s}"
                                             for s in ("global", "local", "face")]
    assert all(row[1].endswith("s/step") for row in train_rows)
    (row,) = bench_compare.summary(compare_figures[0])
    assert row[0] == "ours vs plain G tiny" and row[1].endswith("x")


# --------------------------------------------------------------------------------------------
# The device check (benchmarks/device_check.py), as CI can run it: --dry-run on the CPU
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def device_dry_run(tmp_path_factory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench") / "device.json"
    return run_script("device_check.py", ["--dry-run"], out)


def finite_losses(losses: dict) -> bool:
    return bool(losses) and all(math.isfinite(v) for v in losses.values())


def test_device_check_dry_run_runs_every_part_with_finite_losses(device_dry_run):
    results, stdout = device_dry_run
    check_machine_line(results, stdout)
    assert results["dry_run"] is True
    parts = results["parts"]
    assert list(parts) == ["generator", "train", "train_50", "transfer", "ddp"]
    assert not [name for name, part in parts.items() if "error" in part or "skipped" in part]
    g = parts["generator"]["presets"]["tiny"]
    assert g["size"] == "64x32" and positive(g["fp32"]["median_ms"]) and positive(g["bf16"]["fps"])
    assert 0 < g["max_abs_diff"] < 0.25  # bf16 differs from fp32, a little
    train = parts["train"]
    assert set(train) == {"tiny/global", "tiny/local", "wall_s"}
    assert (train["tiny/global"]["size"], train["tiny/local"]["size"]) == ("32x16", "64x32")
    for key in ("tiny/global", "tiny/local"):
        r = train[key]
        assert r["timed_steps"] == 2 and positive(r["median_s"]) and r["losses_finite"]
        assert finite_losses(r["final_losses"]) and r["amp"] == "fp32"
    fifty = parts["train_50"]
    assert fifty["steps"] == 50 and len(fifty["l1_per_step"]) == 50
    assert fifty["losses_finite"] and finite_losses(fifty["final_losses"])
    assert all(math.isfinite(v) for v in (fifty["l1_first_10"], fifty["l1_last_10"]))
    job = parts["transfer"]["job"]
    assert job["frames"] == 48 and set(job["stages"]) == {"poses", "labels", "generate", "write"}
    assert job["limited_by"] in ("labels", "generate", "write") and positive(job["end_fps"])
    detection = parts["transfer"]["detection"]["workers"]["2"]
    assert detection["frames"] == 48 and detection["chunks"] == 2
    ddp = parts["ddp"]
    assert (ddp["processes"], ddp["world"]) == (2, 2) and ddp["losses_finite"]
    for row in ("G tiny 64x32", "train tiny/global", "50 steps tiny", "transfer tiny 48 frames",
                "pose detection (CPU)", "train ddp tiny/global", "goals"):
        assert re.search(rf"^{re.escape(row)}", stdout, re.MULTILINE), row
    assert "=== device check" in stdout


def test_device_check_skips_what_the_budget_leaves_no_time_for(tmp_path):
    results, stdout = run_script("device_check.py", ["--dry-run", "--budget-s", "1"],
                                 tmp_path / "device.json")
    assert all("time budget" in part["skipped"] for part in results["parts"].values())
    assert re.search(r"^generator\s+skipped", stdout, re.MULTILINE)


def test_device_check_records_a_failing_part_and_goes_on(tmp_path):
    from benchmarks.device_check import Check, make_plan, run_parts, summary

    check = Check(make_plan(dry_run=True), tmp_path, budget_s=120, in_process=True)
    missing = tmp_path / "missing"
    check.inputs = {name: str(missing / name) for name in ("prepared", "bundle", "source", "poses")}
    parts: dict = {}
    run_parts(check, parts)
    assert "error" not in parts["generator"]  # needs no inputs
    for name in ("train_50", "transfer", "ddp"):
        assert str(missing) in parts[name]["error"], name
    assert all(str(missing) in r["error"] for r in parts["train"].values() if isinstance(r, dict))
    rows = summary({"parts": parts, "dry_run": True})
    assert [row[1] for row in rows if row[0] in ("train_50", "transfer", "ddp")] == ["ERROR"] * 3


def test_device_check_summary_judges_the_goals_of_a_gpu_run(device_dry_run):
    """The rows only a GPU run has (goals, DDP scaling), from the dry run's figures relabelled."""
    from benchmarks.device_check import summary

    results = json.loads(json.dumps(device_dry_run[0]))
    parts = results["parts"]
    results["dry_run"] = False
    parts["train"]["paper-global/global"] = {**parts["train"]["tiny/global"], "steps_per_s": 12.5,
                                             "preset": "paper-global", "median_s": 0.08}
    parts["ddp"].update(preset="paper-global", world=2, median_s=0.1)
    parts["transfer"]["job"].update(end_fps=80.0, limited_by="write")
    rows = {row[0]: row for row in summary(results)}
    assert rows["goal: transfer >= 100 frames/s"][1:] == (
        "NOT met", "80.0 frames/s end to end, poses given; limited by write")
    assert rows["goal: training >= 10 steps/s at 512x256"][1] == "met"
    assert rows["ddp scaling x2"][1] == "1.60x"  # 2 x 0.08 s / 0.1 s


def test_precision_benchmark_times_fp32_against_bf16_per_stage(tmp_path):
    results, stdout = run_script("bench_precision.py", ["--presets", "tiny", "--rounds", "2",
                                                        "--steps", "1"], tmp_path / "p.json")
    check_machine_line(results, stdout)
    assert results["auto"] in ("fp32", "bf16")  # conftest's answer: fp32
    assert [r["stage"] for r in results["training"]] == ["global", "local", "face"]
    for r in results["training"]:
        assert positive(r["fp32_s"]) and positive(r["bf16_s"]) and r["rounds"] == 2
        assert r["ratio"] == pytest.approx(r["fp32_s"] / r["bf16_s"], rel=0.01)
        assert all(math.isfinite(v) for p in ("fp32", "bf16") for v in r["losses"][p].values())
    (infer,) = results["inference"]
    assert set(infer["ms"]) == {"torch_fp32", "torch_bf16", "onnx_fp32"}
    assert all(positive(v) for v in infer["ms"].values())
    assert 0 < infer["bf16_mean_abs_diff"] < 0.1  # bf16 rounds, and not by much
    assert "fp32/bf16" in stdout
