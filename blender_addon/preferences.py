"""Add-on preferences: which Python runs the backend, and how."""

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty
from bpy.types import AddonPreferences

from . import compat


class DANCE_AP_preferences(AddonPreferences):
    bl_idname = compat.ADDON_ID

    backend_python: StringProperty(
        name="Backend Python", subtype='FILE_PATH',
        description="A Python that has the backend's requirements (torch, mediapipe, av). "
                    "Empty: the repository's .venv in a source checkout, else the environment "
                    "made by Set Up Backend")
    setup_python: StringProperty(
        name="Python for Set Up", subtype='FILE_PATH',
        description="The Python that Set Up Backend builds the virtual environment with "
                    "(3.10 to 3.12). Empty: Blender's own, where its version fits")
    cpu_only_torch: BoolProperty(
        name="CPU-only PyTorch", default=False,
        description="Install the small CPU build of PyTorch (no NVIDIA GPU support)")
    vgg_weights: StringProperty(
        name="VGG19 Weights", subtype='FILE_PATH',
        description="A local copy of vgg19-dcbb9e9d.pth for the perceptual loss when training "
                    "(empty: downloaded on first use)")
    device: EnumProperty(
        name="Device", default='auto',
        items=[('auto', "Automatic", "A GPU when there is one, else the CPU"),
               ('cuda', "CUDA", "An NVIDIA GPU"), ('mps', "Metal", "An Apple GPU"),
               ('cpu', "CPU", "The CPU only")])
    cluster_address: StringProperty(
        name="Cluster Address",
        description="Run Retarget and Render jobs as tasks of a Ray cluster: 'local' (this "
                    "machine's) or a head node's HOST:PORT, several jobs at once; job folders "
                    "must be on storage every node sees. Empty: on this machine, one at a time")

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "backend_python")
        layout.prop(self, "device")
        layout.prop(self, "cluster_address")
        layout.prop(self, "vgg_weights")
        box = layout.box()
        box.label(text="Set Up Backend")
        box.prop(self, "setup_python")
        box.prop(self, "cpu_only_torch")


CLASSES = (DANCE_AP_preferences,)


class _Defaults:
    """The preference values when the add-on was registered without being enabled (tests)."""

    backend_python = ""
    setup_python = ""
    cpu_only_torch = False
    vgg_weights = ""
    device = 'auto'
    cluster_address = ""


def get(context=None):
    context = context or bpy.context
    addon = context.preferences.addons.get(compat.ADDON_ID)
    return addon.preferences if addon is not None and addon.preferences is not None else _Defaults()
