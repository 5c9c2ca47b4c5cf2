"""The add-on's data in the .blend file: per-strip adjustments and per-scene settings.

The adjustments live on the strip (``strip.dance_scale``, ...), so that each strip keeps its
own and the usual keyframe button animates them. Training runs are listed on the scene by
folder, so a reopened file finds its runs again.
"""

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty,
                       IntProperty, PointerProperty, StringProperty)
from bpy.types import PropertyGroup

from . import compat
from .backend_client import Adjustments
from .core.training_runs import PRESETS

PRESET_ITEMS = [
    ("cpu-small", "CPU Small", "Narrow networks at 256x128, global stage then face GAN: "
                              "a usable model on a laptop CPU"),
    ("cpu-medium", "CPU Medium", "512x256 for 1.5-2x CPU Small's time: the networks "
                                 "paint only a window that follows the person, over the "
                                 "background (static camera)"),
    ("cpu-large", "CPU Large", "1024x512, the paper's output, for at most 3x CPU Small's "
                               "time: the window at 512x256, then a local enhancer and the "
                               "face GAN at 1024x512 (static camera)"),
    ("tiny", "Tiny", "64x32 toy networks: only checks that everything runs"),
    ("paper-global", "Paper (Global)", "The paper's networks at 512x256, global stage then "
                                       "face GAN (a GPU is advised)"),
    ("paper-local", "Paper (Local)", "The paper's full schedule: global 512x256, local "
                                     "1024x512, face GAN (needs a GPU)"),
]
assert [item[0] for item in PRESET_ITEMS] == list(PRESETS)


# The keyframeable adjustments are registered on the strip type itself, not inside the
# DANCE_PG_strip group: Blender can only key a property whose path from the scene it can
# build, and it cannot build one into a property group nested in a strip. The hard limits
# are the backend's (backend/checks.py ADJUST_LIMITS), so no keyed value is refused.
_LIMITS = Adjustments.LIMITS
ADJUSTMENT_PROPS = {
    "dance_scale": FloatProperty(
        name="Scale", default=1.0, min=_LIMITS["scale"][0], max=_LIMITS["scale"][1],
        soft_min=0.25, soft_max=3.0,
        description="Multiply the normalized pose's size about its feet (1 = automatic)"),
    "dance_offset_x": FloatProperty(
        name="Offset X", default=0.0, min=_LIMITS["offset_x"][0], max=_LIMITS["offset_x"][1],
        soft_min=-1.0, soft_max=1.0,
        description="Move the pose right, as a fraction of the output frame's height"),
    "dance_offset_y": FloatProperty(
        name="Offset Y", default=0.0, min=_LIMITS["offset_y"][0], max=_LIMITS["offset_y"][1],
        soft_min=-1.0, soft_max=1.0,
        description="Move the pose down, as a fraction of the output frame's height"),
}


class DANCE_PG_strip(PropertyGroup):
    """Per-strip settings that are not keyed."""

    override_stats: BoolProperty(
        name="Override Statistics", default=False,
        description="Use saved normalization statistics for the source (a JSON file from "
                    "'python -m backend stats') instead of computing them from this clip")
    stats_path: StringProperty(
        name="Statistics", subtype='FILE_PATH',
        description="Normalization statistics of the source dancer (.json)")
    is_result: BoolProperty(
        default=False, options={'HIDDEN'},
        description="This strip holds synthesized frames (batch retargeting skips it)")
    is_preview: BoolProperty(
        default=False, options={'HIDDEN'},
        description="This strip shows a pose preview (batch retargeting and rendering skip it)")
    source: StringProperty(
        options={'HIDDEN'},
        description="The strip this result or preview was made from (the next run replaces "
                    "this strip's frames)")
    previous_media: StringProperty(
        options={'HIDDEN'}, subtype='DIR_PATH',
        description="The preview frames this strip showed before its last update (kept for undo)")
    blend_given: StringProperty(
        options={'HIDDEN'},
        description="The blend type the add-on gave this result or preview (a blend type the "
                    "editor chose instead is kept when new frames come)")


class DANCE_PG_training_run(PropertyGroup):
    """A training run started from this file (its folder holds everything)."""

    run_dir: StringProperty(name="Folder", subtype='DIR_PATH')
    video: StringProperty(name="Target Video", subtype='FILE_PATH')


class DANCE_PG_scene(PropertyGroup):
    model_path: StringProperty(
        name="Model", subtype='DIR_PATH',
        description="Model bundle folder (empty: the built-in demo performer)")
    use_face: BoolProperty(name="Face GAN", default=True,
                           description="Refine faces with the model's face GAN where it has one")
    side_by_side: BoolProperty(name="Side by Side", default=False,
                               description="Also write a video of source | pose | result")
    background: EnumProperty(
        name="Background", default='TARGET',
        items=[('TARGET', "Target's Own", "The target's own room behind the dancer (the "
                                          "model's background plate, or whole frames)"),
               ('TRANSPARENT', "Transparent", "The dancer alone (needs a model with a matte): "
                                              "the result strip blends Alpha Over, so the "
                                              "channels below it are the background")],
        description="What the result shows behind the dancer")
    output_dir: StringProperty(
        name="Output", subtype='DIR_PATH', default="//dance_output/",
        description="Where job folders and synthesized frames go ('//' = next to the .blend "
                    "file; the add-on's user folder while the file is unsaved)")
    train_preset: EnumProperty(name="Preset", items=PRESET_ITEMS, default="cpu-small")
    train_name: StringProperty(name="Name", default="my-dancer",
                               description="Name of the new model")
    train_perceptual: BoolProperty(
        name="Perceptual Loss", default=True,
        description="Train with the paper's VGG19 perceptual loss (its weights are downloaded "
                    "on first use, or taken from the add-on preferences)")
    training_runs: CollectionProperty(type=DANCE_PG_training_run)
    active_training: IntProperty(default=0)
    render_path: StringProperty(name="Video", subtype='FILE_PATH', default="//dance_render.mp4",
                                description="Render the sequencer to this video file")


CLASSES = (DANCE_PG_strip, DANCE_PG_training_run, DANCE_PG_scene)


def register_properties():
    strip_type = compat.strip_type()
    strip_type.dance = PointerProperty(type=DANCE_PG_strip)
    for name, prop in ADJUSTMENT_PROPS.items():
        setattr(strip_type, name, prop)
    bpy.types.Scene.dance = PointerProperty(type=DANCE_PG_scene)


def unregister_properties():
    strip_type = compat.strip_type()
    for owner, name in [(strip_type, "dance"), (bpy.types.Scene, "dance"),
                        *((strip_type, name) for name in ADJUSTMENT_PROPS)]:
        if hasattr(owner, name):
            delattr(owner, name)
