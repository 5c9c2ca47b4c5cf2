"""The target as a transfer job draws it, fixed once when the job starts.

Its statistics (where the source's poses are moved to), its label style, the canvas and how
the target's frame sits in it, the face-box rule, and where its pictures come from: a model
bundle's generator, or for the paper's nearest-neighbour baseline the target's own prepared
frames. Everything is read from the bundle's manifest or, for the baseline without a bundle,
from the prepared run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..labels import LabelStyle
import numpy as np

from ..models.bundle import BundleManifest, read_plate
from ..normalize import NormalizationStats
from ..target.letterbox import Letterbox
from ..target.prepared import PreparedRun
from ..target.window import WindowSpec

DEFAULT_FACE_MULTIPLE = 8  # face boxes without a face generator (only drawn, never refined)


@dataclass(frozen=True)
class TargetSpec:
    """What a job draws (see the module docstring)."""

    stats: NormalizationStats
    style: LabelStyle
    layout: Letterbox  # the target's frame inside the model's canvas
    face_multiple: int
    manifest: BundleManifest | None  # the model bundle's (None: the baseline without one)
    prepared: PreparedRun | None  # the target's frames (the nearest-neighbour baseline)
    plate: np.ndarray | None = None  # the background (the canvas) of a generator with a matte
    window: WindowSpec | None = None  # where its G paints (None: the whole canvas)

    @property
    def has_matte(self) -> bool:
        return self.plate is not None

    @property
    def resolution(self) -> tuple[int, int]:
        return self.layout.canvas

    @staticmethod
    def load(manifest: BundleManifest | None, bundle_folder: Path | None,
             prepared: PreparedRun | None) -> "TargetSpec":
        """From a bundle's manifest (read from ``bundle_folder``) and/or a prepared run."""
        if manifest is not None:
            assert bundle_folder is not None
            where = bundle_folder / "manifest.json"
            stats_data, style_data = manifest.normalization, manifest.label_style
        else:
            assert prepared is not None
            where = prepared.folder / "normalization.json"
            stats_data, style_data = prepared.normalization(), prepared.manifest.label_style
        try:
            stats = NormalizationStats.from_dict(stats_data)
            style = LabelStyle.from_dict(style_data)
        except (TypeError, ValueError) as exc:
            raise InputError(where, f"unusable target statistics or label style ({exc})") from exc
        canvas = manifest.resolution if manifest is not None else prepared.canvas
        layout = Letterbox.fit_into(stats.frame_size, canvas, style.fit)
        face = manifest.face_generator if manifest is not None else None
        multiple = face.size_multiple if face is not None else DEFAULT_FACE_MULTIPLE
        plate = read_plate(bundle_folder, manifest) if manifest is not None else None
        window = manifest.training.window if manifest is not None else None
        return TargetSpec(stats, style, layout, multiple, manifest, prepared, plate, window)
