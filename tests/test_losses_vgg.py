"""GAN, feature-matching and VGG losses; VGG19 weights loading, caching and download failure."""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from backend.errors import InputError
from backend.paths import cache_dir
from training.models.discriminators import MultiscaleDiscriminator
from training.models.losses import VGG_LAYER_WEIGHTS, GANLoss, VGGLoss, \
    feature_matching_loss
from training.models.vgg import VGG19_URL, VGG19Features, WeightsUnavailable, load_vgg19
from training.options import LossOptions

from .helpers import random_vgg_state

# torchvision's vgg19().features: the convolutions up to conv5_1 sit at these indices.
TORCHVISION_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28)
UNREACHABLE = "http://127.0.0.1:9/models/vgg19-dcbb9e9d.pth"  # discard port: refused at once


@pytest.fixture(scope="session")
def vgg_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("vgg")
    state = random_vgg_state()
    pth, st = folder / "vgg19-random.pth", folder / "vgg19-random.safetensors"
    torch.save(state, pth)
    save_file(state, str(st))
    return {"pth": pth, "safetensors": st, "state": state}  # type: ignore[dict-item]


@pytest.fixture(autouse=True)
def empty_torch_home(tmp_path, monkeypatch):
    """No real torch hub cache of this machine may be found by accident."""
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def small_discriminator_outputs(num_D: int = 2) -> tuple[list, list]:
    torch.manual_seed(0)
    d = MultiscaleDiscriminator(input_nc=12, ndf=8, n_layers=3, num_D=num_D)
    real = torch.rand(1, 12, 32, 64)
    fake = (torch.rand(1, 12, 32, 64)).requires_grad_()
    return d(real), d(fake)


# --- GAN and feature matching ----------------------------------------------------------------


def test_lsgan_targets_and_multiscale_sum():
    gan = GANLoss()
    ones = [[torch.zeros(1, 4, 5, 5), torch.ones(1, 1, 3, 3)] for _ in range(3)]
    assert gan(ones, True).item() == 0.0
    assert gan(ones, False).item() == pytest.approx(3.0)  # 1 per scale, summed over scales
    half = [torch.zeros(2), torch.full((1, 1, 3, 3), 0.5)]  # one scale's feature list
    assert gan(half, True).item() == pytest.approx(0.25)
    assert gan(torch.zeros(1, 1, 2, 2), False).item() == 0.0


def test_gan_loss_on_a_real_discriminator_is_finite_and_differentiable():
    _, fake = small_discriminator_outputs()
    loss = GANLoss()(fake, True)
    assert torch.isfinite(loss) and loss > 0
    loss.backward()


def test_feature_matching_zero_for_identical_and_weighted_like_pix2pixhd():
    real, fake = small_discriminator_outputs(num_D=2)
    assert feature_matching_loss(real, real).item() == 0.0
    loss = feature_matching_loss(real, fake)
    expected = sum(
        0.5 * (4.0 / 4.0) * torch.nn.functional.l1_loss(f, r)
        for rs, fs in zip(real, fake) for r, f in zip(rs[:-1], fs[:-1])
    )
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss.item() > 0
    # The real features are targets: no gradient flows into them.
    real_leaf = [[t.detach().requires_grad_() for t in scale] for scale in real]
    feature_matching_loss(real_leaf, fake, num_D=2, n_layers=3).backward()
    assert all(t.grad is None for scale in real_leaf for t in scale)


def test_loss_weights_are_the_papers():
    assert (LossOptions().lambda_feat, LossOptions().lambda_vgg) == (10.0, 10.0)
    assert VGG_LAYER_WEIGHTS == (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


# --- VGG19 network and weight files ----------------------------------------------------------


def test_vgg_layout_is_torchvisions():
    net = VGG19Features()
    convs = [i for i, m in enumerate(net.features) if isinstance(m, nn.Conv2d)]
    assert tuple(convs) == TORCHVISION_CONV_INDICES
    # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 in torchvision's numbering.
    assert all(isinstance(net.features[i], nn.ReLU) for i in (1, 6, 11, 20, 29))
    assert [len(part) for part in net.slices] == [2, 5, 5, 9, 9]
    out = net(torch.zeros(1, 3, 32, 32))
    assert [tuple(t.shape[1:]) for t in out] == [
        (64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 2, 2)]


@pytest.mark.parametrize("kind", ["pth", "safetensors"])
def test_load_vgg19_from_a_file(vgg_files, kind):
    net = load_vgg19(vgg_files[kind])
    state = vgg_files["state"]
    for key, value in net.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert not net.training and not any(p.requires_grad for p in net.parameters())


def test_bad_vgg_files_name_the_file(tmp_path, vgg_files):
    missing = tmp_path / "nope.pth"
    with pytest.raises(InputError, match="nope.pth.*not found"):
        load_vgg19(missing)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(InputError, match="garbage.pth.*cannot read"):
        load_vgg19(garbage)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(vgg_files["safetensors"].read_bytes()[:1000])
    with pytest.raises(InputError, match="truncated.safetensors"):
        load_vgg19(truncated)
    state = dict(vgg_files["state"])
    del state["features.28.weight"]
    torch.save(state, tmp_path / "short.pth")
    with pytest.raises(InputError, match="short.pth.*missing features.28.weight"):
        load_vgg19(tmp_path / "short.pth")
    state = dict(vgg_files["state"], **{"features.0.weight": torch.zeros(64, 1, 3, 3)})
    save_file(state, str(tmp_path / "shape.safetensors"))
    with pytest.raises(InputError, match="shape.safetensors.*features.0.weight has shape"):
        load_vgg19(tmp_path / "shape.safetensors")


class _Trap:
    """Unpickling this would create the marker file: .pth files must never be unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pth_files_are_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    torch.save({"features.0.weight": _Trap(marker)}, tmp_path / "evil.pth")
    with pytest.raises(InputError, match="evil.pth"):
        load_vgg19(tmp_path / "evil.pth")
    assert not marker.exists()


def test_vgg19_found_in_our_cache(vgg_files):
    shutil.copy(vgg_files["pth"], cache_dir("weights") / "vgg19-dcbb9e9d.pth")
    net = load_vgg19(url=UNREACHABLE)
    assert torch.equal(net.features[0].weight, vgg_files["state"]["features.0.weight"])


def test_vgg19_found_in_torch_hub_cache(vgg_files, empty_torch_home):
    hub = empty_torch_home / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    shutil.copy(vgg_files["pth"], hub / "vgg19-dcbb9e9d.pth")
    net = load_vgg19(url=UNREACHABLE)
    assert torch.equal(net.features[28].bias, vgg_files["state"]["features.28.bias"])


def test_vgg19_download_checks_the_hash_and_caches(tmp_path, vgg_files):
    digest = hashlib.sha256(vgg_files["pth"].read_bytes()).hexdigest()
    served = tmp_path / "served" / f"vgg19-{digest[:8]}.pth"
    served.parent.mkdir()
    shutil.copy(vgg_files["pth"], served)
    net = load_vgg19(url=served.as_uri())
    assert torch.equal(net.features[0].weight, vgg_files["state"]["features.0.weight"])
    assert (cache_dir("weights") / served.name).is_file()
    served.unlink()  # the second time comes from the cache
    load_vgg19(url=served.as_uri())


def test_vgg19_download_with_a_wrong_hash_keeps_nothing(tmp_path, vgg_files):
    served = tmp_path / "vgg19-00000000.pth"
    shutil.copy(vgg_files["pth"], served)
    with pytest.raises(WeightsUnavailable, match="sha256"):
        load_vgg19(url=served.as_uri())
    assert list(cache_dir("weights").iterdir()) == []


@pytest.mark.parametrize("url", [UNREACHABLE, "file:///nonexistent/dir/vgg19-dcbb9e9d.pth"])
def test_vgg19_unavailable_says_what_to_do(url):
    start = time.monotonic()
    with pytest.raises(WeightsUnavailable) as err:
        load_vgg19(url=url, timeout=5)
    assert time.monotonic() - start < 5
    message = str(err.value)
    assert "--vgg-weights PATH" in message and "--perceptual none" in message
    assert "vgg19-dcbb9e9d.pth" in message
    assert list(cache_dir("weights").iterdir()) == []
    assert VGG19_URL.endswith("/vgg19-dcbb9e9d.pth")


# --- perceptual loss -------------------------------------------------------------------------


def test_vgg_loss_zero_for_identical_positive_otherwise_and_frozen(vgg_files):
    loss_fn = VGGLoss(load_vgg19(vgg_files["pth"]))
    torch.manual_seed(0)
    real = torch.rand(2, 3, 32, 64) * 2 - 1
    fake = (torch.rand(2, 3, 32, 64) * 2 - 1).requires_grad_()
    assert loss_fn(real, real).item() == 0.0
    loss = loss_fn(fake, real)
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss_fn.vgg.parameters())
    loss_fn.train()
    assert not loss_fn.vgg.training


def test_vgg_loss_normalizes_to_imagenet_statistics(vgg_files):
    loss_fn = VGGLoss(load_vgg19(vgg_files["pth"]))
    grey = torch.zeros(1, 3, 2, 2)  # 0 in [-1, 1] is 0.5 in [0, 1]
    expected = (0.5 - torch.tensor(VGGLoss.MEAN)) / torch.tensor(VGGLoss.STD)
    assert torch.allclose(loss_fn.normalize(grey)[0, :, 0, 0], expected)
