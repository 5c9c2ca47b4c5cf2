"""Blender glue from a finished job to its strip: one result and one preview per source strip.

A job's frames become an image strip marked with its role (``dance.is_result`` or
``dance.is_preview``) and the name of its source strip (``dance.source``). When the source
already has a strip of that role (an earlier retarget, or an earlier preview), the new frames
replace that strip's media *in place*: the same strip keeps its name, channel, blend mode,
opacity, modifiers and keyframes, and lines up with the source's visible frames again. Only
the image folder and file names change, so an undo step restores the previous frames.

A strip's frames often differ in aspect from the scene (a 2:1 model in a 16:9 timeline):
Blender fits them inside it and leaves bands, where the channels below show under its default
blend, Alpha Over (the source dancer's raised hands peeked into the band above a result). So
an opaque result or preview *replaces* the channels below, bands included, and only the dancer
alone (a transparent background) blends over them (`blend_with_channels_below`).

Everything here runs on Blender's main thread.
"""

import os

import bpy

from . import compat
from .core.job_queue import PREVIEW, RESULT
from .core.pose_previews import remove_preview_folder

STRIP_SUFFIX = {RESULT: "dance", PREVIEW: "preview"}


def strip_name(source, role):
    """The name a new strip of ``role`` made from the strip ``source`` gets."""
    return f"{source} ({STRIP_SUFFIX[role]})"


def role_of(strip):
    """RESULT or PREVIEW for a strip this add-on made, else None."""
    settings = strip.dance
    return PREVIEW if settings.is_preview else RESULT if settings.is_result else None


def made_strip(scene, source, role):
    """The image strip an earlier job of ``role`` made from the strip named ``source``.

    Strips from before ``dance.source`` was recorded are known by their default name.
    """
    ed = compat.editor(scene)
    if ed is None:
        return None
    for strip in compat.all_strips(ed):
        if strip.type != 'IMAGE' or role_of(strip) != role:
            continue
        if strip.dance.source == source or (not strip.dance.source
                                            and strip.name == strip_name(source, role)):
            return strip
    return None


def place_result(job, file_generation):
    """Show the finished job's frames where its placement says; returns the strip.

    ``file_generation`` is the session's (see `session`): a job started from another file
    places nothing. A missing scene or frame leaves a message on the job instead.
    """
    p = job.placement
    frames_dir = job.result.frames_dir
    if p.file_generation != file_generation:
        job.message = f"another file was opened; the frames are in {frames_dir}"
        return None
    scene = bpy.data.scenes.get(p.scene)
    if scene is None:
        job.message = f"scene {p.scene} no longer exists; frames are in {frames_dir}"
        return None
    files = [f"{k + 1:06d}.{p.image_ext}" for k in p.job_frames]
    missing = [f for f in files if not os.path.isfile(os.path.join(frames_dir, f))]
    if missing:
        job.message = f"{len(missing)} frames missing in {frames_dir} (first {missing[0]})"
        return None
    strip = made_strip(scene, p.source, p.role)
    if strip is None:
        strip = compat.new_image_strip(compat.editor(scene, create=True), p.name, frames_dir,
                                       files, p.channel, p.frame_start)
        _mark(strip, p)
    else:
        shown_before = compat.abspath(strip.directory, strip.id_data)
        replace_media(strip, frames_dir, files, p.frame_start)
        if p.role == PREVIEW:
            _forget_older_preview(strip, shown_before)
    blend_with_channels_below(strip, p.transparent)
    job.placed = True
    return strip


def blend_with_channels_below(strip, transparent):
    """Opaque frames hide the channels below the strip, in the bands around them too:
    Replace, whose bands render black (transparent in an RGBA render). Black, not the plate's
    edge continued: it is what a letterboxed picture shows, it invents nothing beyond the
    target's frame, and the model's canvas has black bars too. The dancer alone (RGBA,
    straight alpha) blends Alpha Over whatever the channels below show.

    A blend mode the editor chose is kept: the add-on changes only the one it gave the strip
    itself (``dance.blend_given``), or, on a strip from before that was recorded, Blender's
    default (Alpha Over, also what the add-on gave a transparent result then).
    """
    wanted = 'ALPHA_OVER' if transparent else 'REPLACE'
    if transparent:
        strip.alpha_mode = 'STRAIGHT'
    if strip.blend_type == (strip.dance.blend_given or 'ALPHA_OVER'):
        strip.blend_type = wanted
        strip.dance.blend_given = wanted



def _mark(strip, placement):
    strip.dance.is_result = placement.role == RESULT
    strip.dance.is_preview = placement.role == PREVIEW
    strip.dance.source = placement.source


def replace_media(strip, directory, files, frame_start):
    """Show ``files`` (in ``directory``) in the image strip ``strip`` from ``frame_start`` on.

    The strip itself stays (its name, channel, blend mode, opacity, modifiers, animation);
    its handles are reset, as the new frames are exactly those the source strip shows.
    """
    strip.frame_offset_start = strip.frame_offset_end = 0
    strip.directory = os.path.join(directory, "")
    elements = strip.elements
    while len(elements) > len(files):
        elements.pop(len(elements) - 1)
    for element, filename in zip(elements, files):
        element.filename = filename
    for filename in files[len(elements):]:
        elements.append(filename)
    if compat.content_start(strip) != frame_start:
        compat.set_content_start(strip, frame_start)
    strip.invalidate_cache('RAW')  # Blender caches decoded frames by strip, not by file


def _forget_older_preview(strip, shown_before):
    """Keep the frames the preview strip showed before this update (for one undo) and
    remove the ones it showed before those, unless another strip shows them."""
    older, strip.dance.previous_media = strip.dance.previous_media, shown_before
    if older and older != shown_before and not _shown_anywhere(older):
        remove_preview_folder(older)


def _shown_anywhere(directory):
    target = os.path.normpath(directory)
    for scene in bpy.data.scenes:
        ed = compat.editor(scene)
        for strip in compat.all_strips(ed) if ed is not None else ():
            if strip.type == 'IMAGE' and compat.abspath(strip.directory, strip.id_data) == target:
                return True
    return False
