"""Training samples from a prepared folder: runs of consecutive frames with their labels.

A sample is ``length`` consecutive frames t0 .. t0+length-1 of one split (2 for the paper's
pair (t-1, t)): their labels and real frames as float tensors in [-1, 1] (the generator's
input contract), and each frame's face box at the stage's resolution; for a generator with a
matte also the person's masks (in [0, 1]) and the background plate, and for one with a person
window each frame's region (`backend.target.window`, placed from the target's own poses as
transfer places it from the source's). Consecutive means
consecutive in the video: no sample crosses the train / held-out boundary.

With a matte the frames G is asked for are the real ones where the person's mask is, and the
plate elsewhere (``mask * frame + (1 - mask) * plate``): a composite can only show the plate
there, and the real background differs from it in the grain of each frame (sensor noise, the
codec's ringing on edges). Asked for that grain, G learned to paint it where it could see it,
in its previous-frame input, and alpha grew on the room's edges (a picture on the demo room's
wall, target_taiji's sign) and fed on itself over a few frames of transfer.

``EpochSampler`` gives a shuffled order that depends only on (seed, epoch), split between
the processes of a distributed run, and able to start in the middle of an epoch: with the
epoch and position stored in a checkpoint, a resumed run sees exactly the samples the
interrupted run would have seen.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, Sampler

from backend.errors import InputError
from backend.models.images import to_tensor
from backend.target.face import scaled_face_boxes
from backend.target.letterbox import resize
from backend.target.prepared import PreparedRun
from backend.target.window import WindowSpec
from backend.video.images import read_image


class FrameSequenceDataset(Dataset):
    """Runs of ``length`` consecutive frames of the ``split`` ("train" or "eval") at ``size``."""

    def __init__(self, prepared: PreparedRun, size: tuple[int, int], split: str = "train",
                 length: int = 2, face_multiple: int = 8, matte: bool = False,
                 window: WindowSpec | None = None) -> None:
        if split not in ("train", "eval"):
            raise ValueError(f"split must be train or eval, got {split!r}")
        self.prepared = prepared
        self.size = (int(size[0]), int(size[1]))
        self.length = int(length)
        self.first, self.stop = prepared.train_range if split == "train" else prepared.eval_range
        if not prepared.has_labels(self.size):
            raise InputError(prepared.label_dir(self.size), "labels at this size are missing; "
                                                            "run `prepare` again")
        self.boxes = scaled_face_boxes(prepared.face_centers(), prepared.canvas, self.size,
                                       face_multiple)
        self.plate = to_tensor(resize(prepared.plate(), self.size)) if matte else None
        self.window = window
        self.windows = None if window is None else window.regions(
            prepared.track(), prepared.letterbox_at(self.size))

    def __len__(self) -> int:
        return max(0, self.stop - self.first - self.length + 1)

    def frame(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(label, image) of video frame ``index`` as tensors at the dataset's size."""
        label = read_image(self.prepared.label_path(index, self.size))
        image = resize(read_image(self.prepared.frame_path(index)), self.size)
        return to_tensor(label), to_tensor(image)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        if not 0 <= item < len(self):
            raise IndexError(item)
        t0 = self.first + item
        frames = range(t0, t0 + self.length)
        labels, images = zip(*(self.frame(t) for t in frames))
        sample = {
            "labels": torch.stack(labels),  # L x 3 x H x W
            "images": torch.stack(images),
            "face_boxes": torch.from_numpy(self.boxes[t0:t0 + self.length].copy()),  # L x 4
            "index": torch.tensor(t0),
        }
        if self.plate is not None:
            masks = torch.stack([self.mask(t) for t in frames])  # L x 1 x H x W
            sample["images"] = masks * sample["images"] + (1 - masks) * self.plate
            sample["masks"], sample["plate"] = masks, self.plate
        if self.windows is not None:
            sample["windows"] = torch.from_numpy(self.windows[t0:t0 + self.length].copy())
        return sample

    def mask(self, index: int) -> torch.Tensor:
        """The person's mask in video frame ``index``: 1 x H x W in [0, 1]."""
        return torch.from_numpy(resize(self.prepared.mask(index), self.size))[None]


class EpochSampler(Sampler[int]):
    """Shuffled sample indices that depend only on (seed, epoch), for rank ``rank`` of
    ``world`` processes, starting ``start`` samples into this rank's share of the epoch.

    Like ``DistributedSampler`` the permutation is padded (by repeating its start) so every
    rank gets the same number of samples."""

    def __init__(self, n: int, seed: int = 0, rank: int = 0, world: int = 1,
                 shuffle: bool = True) -> None:
        if n <= 0:
            raise ValueError("the dataset is empty")
        self.n, self.seed, self.rank, self.world, self.shuffle = n, seed, rank, world, shuffle
        self.epoch = 0
        self.start = 0

    @property
    def per_rank(self) -> int:
        return math.ceil(self.n / self.world)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = int(epoch), int(start)

    def order(self) -> list[int]:
        """This rank's indices for the whole epoch."""
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            perm = torch.randperm(self.n, generator=gen).tolist()
        else:
            perm = list(range(self.n))
        total = self.per_rank * self.world
        perm += (perm * math.ceil(total / self.n))[: total - self.n]
        return perm[self.rank:total:self.world]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order()[self.start:])

    def __len__(self) -> int:
        return self.per_rank - self.start


def collate(samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack samples along a new batch dimension: labels/images N x L x 3 x H x W."""
    return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}
