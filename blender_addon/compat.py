"""Every difference between Blender versions that the add-on meets, in one place.

Supported: Blender 3.4 (Debian's), 4.2 LTS to 4.5 LTS, and 5.0.

* Strips: 3.x-4.3 ``sequences`` / ``sequences_all`` and type ``Sequence``; 4.4+ ``strips`` /
  ``strips_all`` and type ``Strip`` (``sequences`` deprecated, removed in 5.0).
* The sequencer's scene: 5.0 edits ``context.sequencer_scene`` (a workspace setting), which
  may differ from ``context.scene``.
* F-curves: up to 4.3 ``Action.fcurves``; 4.4+ layered actions keep them in a channelbag
  per slot (``Action.fcurves`` is a legacy proxy in 4.4/4.5 and gone in 5.0).
* ``UILayout.progress`` exists from 4.0.
* Video output: 5.0 picks ``image_settings.media_type = 'VIDEO'`` before ``FFMPEG``.
* Strip timing: ``animation_offset_*`` / ``frame_start`` are deprecated after 5.0 in favour of
  ``content_trim_*`` / ``content_start``.
* The add-on's user folder: ``bpy.utils.extension_path_user`` for 4.2+ extensions,
  ``user_resource('DATAFILES')`` for legacy add-ons.
"""

import os
from pathlib import Path

import bpy

ADDON_ID = __package__  # "blender_addon", or "bl_ext.user_default.everybody_dance" installed
DATA_FOLDER = "everybody_dance"


# --- types and collections ------------------------------------------------------------------


def strip_type():
    """The strip base type: ``Strip`` (4.4+) or ``Sequence``."""
    return getattr(bpy.types, "Strip", None) or bpy.types.Sequence


def sequencer_scene(context):
    """The scene whose strips the sequencer edits (5.0: ``context.sequencer_scene``)."""
    scene = getattr(context, "sequencer_scene", None)
    return scene if scene is not None else context.scene


def editor(scene, create=False):
    if scene is None:
        return None
    if scene.sequence_editor is None and create:
        scene.sequence_editor_create()
    return scene.sequence_editor


def top_strips(ed):
    """The top-level strip collection (where ``new_image`` lives)."""
    return ed.strips if hasattr(ed, "strips") else ed.sequences


def all_strips(ed):
    """Every strip, meta strip contents included."""
    return ed.strips_all if hasattr(ed, "strips_all") else ed.sequences_all


def active_strip(context):
    ed = editor(sequencer_scene(context))
    return ed.active_strip if ed is not None else None


def selected_strips(context):
    ed = editor(sequencer_scene(context))
    return [] if ed is None else [s for s in all_strips(ed) if s.select]


def find_strip(scene, name):
    ed = editor(scene)
    return None if ed is None else all_strips(ed).get(name)


# --- reading strips ---------------------------------------------------------------------------


def abspath(path, id_data=None):
    library = getattr(id_data, "library", None)
    return os.path.normpath(bpy.path.abspath(path, library=library))


def scene_fps(scene):
    return scene.render.fps / scene.render.fps_base


def content_start(strip):
    """Timeline frame of the strip's first content frame (after hard trims)."""
    return strip.frame_start if hasattr(strip, "frame_start") else strip.content_start


def set_content_start(strip, frame):
    """Move the strip so that its first content frame is on timeline frame ``frame``."""
    if hasattr(strip, "frame_start"):
        strip.frame_start = frame
    else:
        strip.content_start = frame


def hard_trims(strip):
    """Content frames cut at the start and end (``content_trim_*`` after 5.x's renames)."""
    if hasattr(strip, "animation_offset_start"):
        return int(strip.animation_offset_start), int(strip.animation_offset_end)
    return int(strip.content_trim_start), int(strip.content_trim_end)


def movie_frame_count(filepath):
    """Frames in a movie file, read the way Blender reads it (through a temporary MovieClip)."""
    existing = {clip.name for clip in bpy.data.movieclips}
    clip = bpy.data.movieclips.load(filepath, check_existing=True)
    try:
        return int(clip.frame_duration)
    finally:
        if clip.name not in existing:
            bpy.data.movieclips.remove(clip)


def new_image_strip(ed, name, directory, files, channel, frame_start):
    """An image strip of ``files`` (in ``directory``) at ``channel`` from ``frame_start``."""
    strips = top_strips(ed)
    first = os.path.join(directory, files[0])
    try:
        strip = strips.new_image(name, first, channel, frame_start, fit_method='FIT')
    except TypeError:  # fit_method appeared in 2.92; keep working without it
        strip = strips.new_image(name, first, channel, frame_start)
    for filename in files[1:]:
        strip.elements.append(filename)
    # new_image may shuffle the strip away from an occupied range: put it where it was decided.
    if strip.channel != channel:
        strip.channel = channel
    return strip


# --- animation --------------------------------------------------------------------------------


def _fcurves(id_data):
    """The F-curves animating ``id_data`` (through its action slot where actions are layered)."""
    anim = getattr(id_data, "animation_data", None)
    action = getattr(anim, "action", None) if anim is not None else None
    if action is None:
        return []
    slot = getattr(anim, "action_slot", None)
    if slot is not None and hasattr(action, "layers"):  # 4.4+: slotted, layered actions
        for layer in action.layers:
            for strip in layer.strips:
                bag = strip.channelbag(slot) if hasattr(strip, "channelbag") else None
                if bag is not None:
                    return list(bag.fcurves)
    return list(getattr(action, "fcurves", []))  # up to 4.3 (and legacy actions in 4.4/4.5)


def find_fcurve(id_data, data_path, index=0):
    for fcurve in _fcurves(id_data):
        if fcurve.data_path == data_path and fcurve.array_index == index:
            return fcurve
    return None


def property_evaluator(struct, prop):
    """``evaluate(frame)`` of the F-curve animating ``struct.prop``; None when not animated."""
    try:
        path = struct.path_from_id(prop)
    except ValueError:  # not reachable from its ID: cannot be animated
        return None
    fcurve = find_fcurve(struct.id_data, path)
    if fcurve is None or fcurve.mute:
        return None
    return fcurve.evaluate


# --- UI ---------------------------------------------------------------------------------------


def draw_progress(layout, factor, text):
    """A progress bar (4.0+) or, before, a label with the percentage."""
    factor = max(0.0, min(1.0, factor))
    if hasattr(layout, "progress"):
        layout.progress(factor=factor, type='BAR', text=text)
    else:
        layout.label(text=f"{text} ({factor * 100:.0f}%)", icon='TIME')


def redraw_sequencer():
    wm = bpy.context.window_manager
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type == 'SEQUENCE_EDITOR':
                area.tag_redraw()


# --- files ------------------------------------------------------------------------------------


def user_dir():
    """The add-on's folder for its virtual environment, logs and training runs."""
    if hasattr(bpy.utils, "extension_path_user") and ADDON_ID.startswith("bl_ext."):
        return Path(bpy.utils.extension_path_user(ADDON_ID, create=True))
    return Path(bpy.utils.user_resource('DATAFILES', path=DATA_FOLDER, create=True))


def set_video_output(scene, filepath):
    """Render the sequencer to an H.264 MP4 with AAC audio at ``filepath``."""
    render = scene.render
    settings = render.image_settings
    if hasattr(settings, "media_type"):  # 5.0
        settings.media_type = 'VIDEO'
    settings.file_format = 'FFMPEG'
    render.ffmpeg.format = 'MPEG4'
    render.ffmpeg.codec = 'H264'
    render.ffmpeg.audio_codec = 'AAC'
    render.use_sequencer = True
    render.filepath = filepath
