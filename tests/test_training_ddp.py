"""Distributed training: two processes with the gloo backend on the CPU keep identical
replicas of every network, and only rank 0 writes checkpoints and the status file."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from training import checkpoint as ckpt
from training.run_folder import stage_checkpoint

STEPS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, run: str, out: str) -> None:
    """One torchrun-like process: the environment torchrun would set, then ``train``."""
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    from training.distributed import teardown
    from training.options import preset
    from training.trainer import train

    opts = preset("tiny")
    opts.loss.perceptual = "none"
    opts.schedule.stages = ("global",)
    opts.runtime.tensorboard = False
    opts.runtime.device = "cpu"
    try:
        opts.runtime.progress = False
        [result] = train(run, opts, steps=STEPS)
        nets = result["nets"]
        tensors = {f"{name}.{k}": v.detach().contiguous()
                   for name, net in nets.named().items() for k, v in net.state_dict().items()}
        save_file(tensors, str(Path(out) / f"rank{rank}.safetensors"))
    finally:
        teardown()


@pytest.mark.slow
def test_two_gloo_processes_keep_identical_replicas(tmp_path, prepared_ddp_run):
    run = tmp_path / "run"
    shutil.copytree(prepared_ddp_run / "prepared", run / "prepared")
    mp.spawn(_worker, args=(2, _free_port(), str(run), str(tmp_path)), nprocs=2, join=True)
    rank0 = load_file(str(tmp_path / "rank0.safetensors"))
    rank1 = load_file(str(tmp_path / "rank1.safetensors"))
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key

    saved = ckpt.load_checkpoint(stage_checkpoint(run, "global"))
    assert saved["step"] == STEPS and saved["world"] == 2
    # the checkpoint is rank 0's replica, and training moved it away from the initial weights
    assert torch.equal(saved["nets"]["G"]["model.1.weight"], rank0["G.model.1.weight"])
    from training.options import preset
    from training.stages import fresh_nets

    torch.manual_seed(0)
    initial = fresh_nets(preset("tiny"), "global").generator.state_dict()["model.1.weight"]
    assert not torch.equal(initial, rank0["G.model.1.weight"])
    assert json.loads((run / "status.json").read_text())["state"] == "done"


@pytest.fixture
def prepared_ddp_run(tmp_path_factory) -> Path:
    from backend.demo import make_demo_clip
    from training.data.prepare import PrepareOptions, prepare

    folder = tmp_path_factory.mktemp("ddp-data")
    track = make_demo_clip(folder / "clip.mp4", motion="target", n_frames=12, fps=30,
                           size=(128, 64), progress=False)
    prepare(folder / "clip.mp4", folder / "run",
            PrepareOptions(size=(64, 32), label_sizes=((64, 32),)), track=track, progress=False)
    return folder / "run"
