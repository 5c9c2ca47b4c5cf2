"""What tests/test_addon_blender.py runs *inside* Blender (no test functions here).

Run as a script, in a Blender of any supported version::

    python tests/test_addon_blender_scenarios.py SCENARIO CONFIG.json          # the bpy module
    blender -b --python-exit-code 1 --python tests/test_addon_blender_scenarios.py -- SCENARIO CONFIG.json

CONFIG.json names the inputs (clips, model bundle, the backend Python, the add-on zip when the
installed add-on is tested) and the work folder; each scenario asserts what it can see inside
Blender and writes ``result.json`` there for the pytest side. Only the standard library and
bpy are used: Blender's own Python has no pytest, numpy or torch.
"""

import json
import sys
import time
from pathlib import Path

SOURCE_MODULE = "blender_addon"  # the add-on from the source checkout
INSTALLED_MODULE = "everybody_dance"  # the add-on installed from the zip


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def enable_addon(cfg):
    """Install (from the zip, when given) and enable the add-on; returns its module."""
    import addon_utils
    import bpy

    if cfg.get("zip"):
        if cfg.get("as_extension"):
            bpy.ops.extensions.package_install_files(filepath=cfg["zip"], repo="user_default",
                                                     enable_on_install=False)
            module = f"bl_ext.user_default.{INSTALLED_MODULE}"
        else:
            bpy.ops.preferences.addon_install(filepath=cfg["zip"], overwrite=True)
            module = INSTALLED_MODULE
    else:
        if cfg["repo"] not in sys.path:
            sys.path.insert(0, cfg["repo"])
        module = SOURCE_MODULE

    def fail(exc):
        raise exc

    mod = addon_utils.enable(module, default_set=True, handle_error=fail)
    assert mod is not None, f"could not enable {module}"
    prefs = bpy.context.preferences.addons[module].preferences
    prefs.backend_python = cfg["backend_python"]
    prefs.device = 'cpu'
    prefs.cluster_address = cfg.get("cluster", "")  # a Ray cluster's address (empty: none)
    return module, sys.modules[module]


def addon_part(module, name):
    return sys.modules[f"{module}.{name}"]


def set_up_scene(cfg, compat, blocker=True, keys=True, wide=False):
    """A 24 fps scene with the dancer's movie strip: trimmed, with keyed adjustments.

    Strip "dancer" on channel 1: content starts at frame 10, 1 frame cut hard at the start,
    2 hidden by the left handle, 3 by the right: timeline 12..17 shows source frames 3..8.
    A colour strip on channel 2 (frames 14..19) occupies the first channel above it.
    ``wide``: a 256x144 (16:9) scene and dancer instead of 128x128 ones.
    """
    import bpy

    scene = bpy.context.scene
    workspace = getattr(bpy.context, "workspace", None)
    if hasattr(workspace, "sequencer_scene"):  # 5.0: what a user's file has (strip modifiers
        workspace.sequencer_scene = scene  # crash the bpy module without it)
    scene.render.fps, scene.render.fps_base = 24, 1.0
    scene.render.resolution_x, scene.render.resolution_y = (256, 144) if wide else (128, 128)
    scene.render.resolution_percentage = 100
    scene.frame_start, scene.frame_end = 1, 40
    scene.dance.output_dir = str(Path(cfg["work"]) / "jobs")
    scene.dance.model_path = cfg["bundle"]
    ed = compat.editor(scene, create=True)
    strip = compat.top_strips(ed).new_movie("dancer", cfg["wide_clip" if wide else "clip"], 1, 10)
    strip.animation_offset_start = 1
    strip.frame_offset_start = 2
    strip.frame_offset_end = 3
    if blocker:
        try:
            compat.top_strips(ed).new_effect("blocker", 'COLOR', 2, frame_start=14, frame_end=20)
        except TypeError:  # Blender 5.0: a length instead of an end
            compat.top_strips(ed).new_effect("blocker", 'COLOR', 2, frame_start=14, length=6)
    if keys:
        for frame, scale, offset_x in ((12, 1.0, -0.1), (17, 2.0, 0.4)):
            strip.dance_scale, strip.dance_offset_x = scale, offset_x
            strip.keyframe_insert("dance_scale", frame=frame)  # what the keyframe button does
            strip.keyframe_insert("dance_offset_x", frame=frame)
        strip.dance_offset_y = 0.05
        for fcurve in compat._fcurves(scene):
            for point in fcurve.keyframe_points:
                point.interpolation = 'LINEAR'
    for s in compat.all_strips(ed):
        s.select = s.name == "dancer"
    ed.active_strip = strip
    return scene, strip


def strip_fields(strip):
    return {"name": strip.name, "type": strip.type, "channel": strip.channel,
            "frame_start": strip.frame_start, "final_start": strip.frame_final_start,
            "final_end": strip.frame_final_end, "offset_start": strip.frame_offset_start,
            "offset_end": strip.frame_offset_end,
            "animation_offset_start": strip.animation_offset_start}


def result_strips(compat, scene, flag="is_result"):
    """The strips the add-on made (``flag``: "is_result" or "is_preview"), with their media and
    what an editor sets on a strip."""
    out = []
    for s in compat.all_strips(compat.editor(scene)):
        if getattr(s.dance, flag):
            fields = strip_fields(s)
            fields.update(directory=s.directory, elements=[e.filename for e in s.elements],
                          blend_type=s.blend_type, blend_alpha=s.blend_alpha, mute=s.mute,
                          modifiers=[m.name for m in s.modifiers], source=s.dance.source,
                          previous_media=s.dance.previous_media)
            out.append(fields)
    return out


def write_result(cfg, data):
    Path(cfg["work"], "result.json").write_text(json.dumps(data, indent=1))


def render_still(scene, path):
    """The sequencer's picture of the current frame, as a PNG at ``path``."""
    import bpy

    scene.view_settings.view_transform = 'Standard'
    scene.render.image_settings.file_format = 'PNG'
    scene.render.use_sequencer = True
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)


# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------


def scenario_register(cfg):
    """Enable and disable the add-on twice: everything appears and goes away cleanly."""
    import addon_utils
    import bpy

    rounds = []
    for _ in range(2):
        module, mod = enable_addon(cfg)
        compat, session = addon_part(module, "compat"), addon_part(module, "session")
        assert hasattr(bpy.types.Scene, "dance") and hasattr(compat.strip_type(), "dance")
        assert hasattr(bpy.types, "SEQUENCER_OT_retarget_dance")
        assert hasattr(bpy.types, "DANCE_PT_retarget")
        assert bpy.app.timers.is_registered(session.tick)
        assert not bpy.ops.sequencer.retarget_dance.poll()  # no strip yet
        locations = addon_part(module, "core.locations")
        user_dir = compat.user_dir()
        assert user_dir.is_dir()
        where = {"backend_root": str(locations.backend_root()), "user_dir": str(user_dir)}
        addon_utils.disable(module, default_set=True)
        assert not hasattr(bpy.types.Scene, "dance")
        assert not hasattr(compat.strip_type(), "dance_scale")
        assert not hasattr(bpy.types, "SEQUENCER_OT_retarget_dance")
        assert not hasattr(bpy.types, "DANCE_PT_retarget")
        assert not bpy.app.timers.is_registered(session.tick)
        rounds.append(module)
    write_result(cfg, {"rounds": rounds, "version": list(bpy.app.version), **where})


def scenario_job(cfg):
    """A strip -> its job (no worker): frames, keyed adjustments, placement, source untouched."""
    import bpy

    module, _ = enable_addon(cfg)
    compat, strips, session = (addon_part(module, n) for n in ("compat", "strips", "session"))
    scene, strip = set_up_scene(cfg, compat)
    before = strip_fields(strip)
    job = strips.build_job(scene, strip, session.get().runner)
    assert strip_fields(strip) == before, "the source strip was modified"
    run, p = job.run, job.placement
    # The request's only forms before the transfer: the protocol's own Run, and its JSON line.
    client = addon_part(module, "backend_client")
    forms = {"type": type(run).__qualname__, "module": type(run).__module__.split(".", 1)[-1],
             "json_reads_back": client.parse_line(run.to_line()) == run}
    # An image strip of frames 000003..000010 of a PNG folder, its first element hidden.
    frames = Path(cfg["frames"])
    images = compat.new_image_strip(compat.editor(scene), "pictures", str(frames),
                                    [f"{i:06d}.png" for i in range(3, 11)], 5, 30)
    images.frame_offset_start = 1
    image_run = strips.build_job(scene, images, session.get().runner).run
    write_result(cfg, {
        "forms": forms,
        "image_run": {"source": image_run.source, "frame_start": image_run.frame_start,
                      "frame_stop": image_run.frame_stop, "fps": image_run.fps},
        "version": list(bpy.app.version),
        "run": {"source": run.source, "model": run.model, "frame_start": run.frame_start,
                "frame_stop": run.frame_stop, "fps": run.fps, "face": run.face,
                "adjustments": {"scale": run.adjustments.scale,
                                "offset_x": run.adjustments.offset_x,
                                "offset_y": run.adjustments.offset_y}},
        "placement": {"scene": p.scene, "channel": p.channel, "frame_start": p.frame_start,
                      "job_frames": list(p.job_frames), "name": p.name},
    })


def scenario_render(cfg):
    """Blender renders each visible frame of the trimmed strip; the pytest side compares them
    with the source frames the add-on's mapping says are shown."""
    import bpy

    module, _ = enable_addon(cfg)
    compat, strips, session = (addon_part(module, n) for n in ("compat", "strips", "session"))
    scene, strip = set_up_scene(cfg, compat, blocker=False, keys=False)
    job = strips.build_job(scene, strip, session.get().runner)
    scene.view_settings.view_transform = 'Standard'
    scene.render.image_settings.file_format = 'PNG'
    scene.render.use_sequencer = True
    scene.frame_start, scene.frame_end = strip.frame_final_start, strip.frame_final_end - 1
    scene.render.filepath = str(Path(cfg["work"]) / "render_####")
    bpy.ops.render.render(animation=True)
    source = [job.run.frame_start + k for k in job.placement.job_frames]
    write_result(cfg, {"frames": list(range(scene.frame_start, scene.frame_end + 1)),
                       "source_frames": source})


def scenario_retarget(cfg):
    """Retarget Dance with a real worker (background mode: the operator runs to the end)."""
    import bpy

    module, _ = enable_addon(cfg)
    compat, session = addon_part(module, "compat"), addon_part(module, "session")
    scene, strip = set_up_scene(cfg, compat)
    before = strip_fields(strip)
    started = time.monotonic()
    assert bpy.ops.sequencer.retarget_dance() == {'FINISHED'}
    job = session.get().runner.queue.jobs[-1]
    assert strip_fields(strip) == before, "the source strip was modified"
    write_result(cfg, {"results": result_strips(compat, scene), "job_dir": job.run.output_dir,
                       "state": job.state.value, "message": job.message,
                       "hello_device": getattr(session.get().runner.hello, "device", None),
                       "seconds": time.monotonic() - started})
    session.shutdown()


def scenario_composite(cfg):
    """Background "Transparent" with a model that has a matte: the result strip holds RGBA
    frames of the dancer alone and blends Alpha Over, so the channels below it are the
    background. The model's alpha is 0 everywhere (see the assets), so a render of a frame
    where the colour strip lies below shows the colour strip."""
    import bpy

    module, _ = enable_addon(cfg)
    compat, session = addon_part(module, "compat"), addon_part(module, "session")
    scene, strip = set_up_scene(cfg, compat)
    scene.dance.model_path = cfg["matte_bundle"]
    scene.dance.background = 'TRANSPARENT'
    assert bpy.ops.sequencer.retarget_dance() == {'FINISHED'}
    job = session.get().runner.queue.jobs[-1]
    [result] = [s for s in compat.all_strips(compat.editor(scene)) if s.dance.is_result]
    blocker = compat.editor(scene).sequences_all["blocker"] if hasattr(
        compat.editor(scene), "sequences_all") else compat.editor(scene).strips_all["blocker"]
    scene.frame_set(15)
    render_still(scene, Path(cfg["work"]) / "composite.png")
    write_result(cfg, {"state": job.state.value, "message": job.message,
                       "background": job.run.background, "blend": result.blend_type,
                       "alpha_mode": result.alpha_mode, "channel": result.channel,
                       "blocker_channel": blocker.channel,
                       "blocker_color": list(blocker.color),
                       "frames": str(Path(job.run.output_dir) / "frames")})
    session.shutdown()


def scenario_bands(cfg):
    """A 2:1 result in a 16:9 scene, above its 16:9 source strip: Blender fits it inside with
    a band above and below. Frame 15 is rendered with the result muted (the source dancer),
    then with the opaque result (its bands must be black), then with a transparent one of the
    matte model (alpha 0 everywhere: the source all over). Last, a blend mode the editor
    chose stays when new frames come."""
    import bpy

    module, _ = enable_addon(cfg)
    compat, session = addon_part(module, "compat"), addon_part(module, "session")
    scene, strip = set_up_scene(cfg, compat, blocker=False, keys=False, wide=True)
    scene.dance.model_path = cfg["wide_bundle"]
    work, blends, states = Path(cfg["work"]), [], []

    def retarget(model, background):
        scene.dance.model_path, scene.dance.background = cfg[model], background
        assert bpy.ops.sequencer.retarget_dance() == {'FINISHED'}
        job = session.get().runner.queue.jobs[-1]
        states.append([job.state.value, job.message])
        [result] = [s for s in compat.all_strips(compat.editor(scene)) if s.dance.is_result]
        blends.append(result.blend_type)
        return result

    result = retarget("wide_bundle", 'TARGET')
    scene.frame_set(15)
    result.mute = True
    render_still(scene, work / "source.png")
    result.mute = False
    render_still(scene, work / "opaque.png")
    retarget("wide_matte_bundle", 'TRANSPARENT')
    render_still(scene, work / "transparent.png")
    result.blend_type = 'ADD'  # the editor's choice
    retarget("wide_bundle", 'TARGET')
    frames = sorted(Path(result.directory).glob("*.png"))
    write_result(cfg, {"states": states, "blends": blends, "frame": str(frames[0]),
                       "scene_size": [scene.render.resolution_x, scene.render.resolution_y]})
    session.shutdown()


def rekey_scale(scene, strip, frame, value):
    """What an editor does to fix the size: a new value on an existing scale key."""
    strip.dance_scale = value
    strip.keyframe_insert("dance_scale", frame=frame)


def scenario_preview(cfg):
    """Preview Poses with a real worker (background mode: the operator runs to the end), a
    keyframe changed, Preview Poses again: the same preview strip shows the new figure. Batch
    retargeting leaves the preview out, and rendering hides it."""
    import bpy

    module, _ = enable_addon(cfg)
    compat, session = addon_part(module, "compat"), addon_part(module, "session")
    batch = addon_part(module, "operators.retarget")
    render = addon_part(module, "operators.render")
    scene, strip = set_up_scene(cfg, compat)
    before = strip_fields(strip)
    assert bpy.ops.sequencer.preview_dance_poses() == {'FINISHED'}
    first = result_strips(compat, scene, "is_preview")
    rekey_scale(scene, strip, 17, 0.5)
    assert bpy.ops.sequencer.preview_dance_poses() == {'FINISHED'}
    second = result_strips(compat, scene, "is_preview")
    assert strip_fields(strip) == before, "the source strip was modified"
    jobs = session.get().runner.queue.jobs
    for s in compat.all_strips(compat.editor(scene)):
        s.select = True
    sources = [s.name for s in batch.sources(bpy.context)]
    scene.frame_start, scene.frame_end = 12, 17
    video = render.render_video(scene, str(Path(cfg["work"]) / "render.mp4"))
    after_render = result_strips(compat, scene, "is_preview")
    made = [preview_record(job.run.output_dir) for job in jobs]  # before the first goes
    rekey_scale(scene, strip, 17, 1.0)
    assert bpy.ops.sequencer.preview_dance_poses() == {'FINISHED'}  # a third: the first goes
    write_result(cfg, {"first": first, "second": second, "batch_sources": sources,
                       "render": video, "after_render": after_render,
                       "third": result_strips(compat, scene, "is_preview"), "made": made,
                       "states": [j.state.value for j in jobs],
                       "messages": [j.message for j in jobs],
                       "previews": [j.run.output_dir for j in jobs]})
    session.shutdown()


def preview_record(folder):
    """What the pytest side checks of a preview folder: the scale it was asked for, and its
    first and last frames (hashed: a JPEG encoder gives the same bytes for the same picture)."""
    import hashlib

    folder = Path(folder)
    record = json.loads((folder / "preview.json").read_text())
    frames = sorted((folder / "frames").iterdir())
    return {"scale": record["parameters"]["adjustments"]["scale"],
            "first": hashlib.sha256(frames[0].read_bytes()).hexdigest(),
            "last": hashlib.sha256(frames[-1].read_bytes()).hexdigest()}


def frame_hashes(job_dir):
    """The sha256 of every frame of a job folder, in order."""
    import hashlib

    frames = sorted((Path(job_dir) / "frames").glob("*.png"))
    return [hashlib.sha256(f.read_bytes()).hexdigest() for f in frames]


def scenario_rerun(cfg):
    """Retarget Dance, the editor sets the result strip up (name, blend, opacity, a modifier),
    keys the scale in the middle of the strip and changes the last key (only the second half
    changes), Retarget Dance again: the same strip gets the new frames and keeps what the
    editor set; the new job keeps the first half's frames. Undo brings the first frames back."""
    import bpy

    module, _ = enable_addon(cfg)
    compat, session = addon_part(module, "compat"), addon_part(module, "session")
    scene, strip = set_up_scene(cfg, compat)
    assert bpy.ops.sequencer.retarget_dance() == {'FINISHED'}
    [result] = [s for s in compat.all_strips(compat.editor(scene)) if s.dance.is_result]
    result.name, result.blend_type, result.blend_alpha = "my dance", 'ADD', 0.6
    result.modifiers.new("grade", 'BRIGHT_CONTRAST')
    first = result_strips(compat, scene)
    first_frames = frame_hashes(session.get().runner.queue.jobs[-1].run.output_dir)
    bpy.ops.ed.undo_push(message="the editor's settings")
    scene.frame_set(14)  # the strip shows timeline 12..17: key 14 as it is now, then move 17
    strip.keyframe_insert("dance_scale", frame=14)
    rekey_scale(scene, strip, 17, 0.5)
    # undo=True: an undo step, as when the button is pressed (scripts' calls make none).
    assert bpy.ops.sequencer.retarget_dance('EXEC_DEFAULT', True) == {'FINISHED'}
    second = result_strips(compat, scene)
    jobs = session.get().runner.queue.jobs
    frames = [frame_hashes(j.run.output_dir) for j in jobs]
    log = (Path(jobs[-1].run.output_dir) / "log.txt").read_text()
    undone = bpy.ops.ed.undo()
    scene = bpy.context.scene  # undo replaced every data-block: look them up again
    write_result(cfg, {"first": first, "second": second, "undo": sorted(undone),
                       "after_undo": result_strips(compat, scene),
                       "states": [j.state.value for j in jobs],
                       "messages": [j.message for j in jobs],
                       "job_dirs": [j.run.output_dir for j in jobs],
                       "first_frames": first_frames, "frames": frames, "log": log,
                       "reuse": [j.run.reuse for j in jobs]})
    session.shutdown()


def scenario_make_blend(cfg):
    """A project with two selected dancer strips, saved for the batch scenario."""
    import bpy

    module, _ = enable_addon(cfg)
    compat = addon_part(module, "compat")
    scene, first = set_up_scene(cfg, compat, blocker=False, keys=False)
    second = compat.top_strips(compat.editor(scene)).new_movie("dancer2", cfg["clip2"], 1, 25)
    first.select = second.select = True
    scene.dance.render_path = str(Path(cfg["work"]) / "render.mp4")
    bpy.ops.wm.save_as_mainfile(filepath=str(Path(cfg["work"]) / "project.blend"))
    write_result(cfg, {"saved": True})


def scenario_batch(cfg):
    """What ``blender -b project.blend --python-expr ...`` does, for the bpy module (which
    takes no command line): open, batch-retarget every selected strip, render, save."""
    import bpy

    module, _ = enable_addon(cfg)
    bpy.ops.wm.open_mainfile(filepath=str(Path(cfg["work"]) / "project.blend"))
    assert bpy.ops.sequencer.retarget_dance_batch(render=True) == {'FINISHED'}
    bpy.ops.wm.save_mainfile()
    addon_part(module, "session").shutdown()


def scenario_inspect(cfg):
    """Reopen the saved project and list its result strips."""
    import bpy

    module, _ = enable_addon(cfg)
    bpy.ops.wm.open_mainfile(filepath=str(Path(cfg["work"]) / "project.blend"))
    compat = addon_part(module, "compat")
    write_result(cfg, {"results": result_strips(compat, bpy.context.scene)})


def _wait_training(session, run_dir, condition, timeout=180):
    """Poll the run's status the way the panel does, until ``condition(status)``."""
    deadline = time.monotonic() + timeout
    while True:
        session.get().forget_training_cache()
        status = session.get().training_status(run_dir)
        if condition(status):
            return status
        assert time.monotonic() < deadline, f"training stuck: {status}"
        time.sleep(0.2)


def scenario_train_start(cfg):
    """Train from Active Strip, cancel it during training, resume it, and close Blender while
    it runs (the detached training must go on)."""
    import bpy

    module, _ = enable_addon(cfg)
    compat, session = addon_part(module, "compat"), addon_part(module, "session")
    scene, strip = set_up_scene(cfg, compat, blocker=False, keys=False)
    strip.frame_offset_start = strip.frame_offset_end = 0  # train on every frame
    scene.dance.train_name, scene.dance.train_preset = "tiny test", "tiny"
    scene.dance.train_perceptual = False  # no VGG19 download offline
    assert bpy.ops.sequencer.dance_train_from_strip() == {'FINISHED'}
    run = scene.dance.training_runs[0]
    seen = _wait_training(session, run.run_dir,
                          lambda s: s.state != "running" or (s.step_name == "train" and s.step > 0))
    assert seen.state == "running", seen
    summary_while_training = seen.summary()
    assert bpy.ops.sequencer.dance_cancel_training(index=0) == {'FINISHED'}
    cancelled = _wait_training(session, run.run_dir, lambda s: s.state != "running")
    assert cancelled.state == "cancelled" and cancelled.can_resume, cancelled
    assert bpy.ops.sequencer.dance_resume_training(index=0) == {'FINISHED'}
    resumed = _wait_training(session, run.run_dir, lambda s: s.state == "running" and s.pid != seen.pid
                             or s.state != "cancelled")
    bpy.ops.wm.save_as_mainfile(filepath=str(Path(cfg["work"]) / "training.blend"))
    write_result(cfg, {"run_dir": run.run_dir, "summary_while_training": summary_while_training,
                       "stopped_at": cancelled.step, "state_at_exit": resumed.state,
                       "pid": resumed.pid, "train_args": list(addon_part(module, "core.training_runs")
                                                              .request_from_record(Path(run.run_dir))
                                                              .train_args)})


def scenario_train_reopen(cfg):
    """Reopen the file after training ended without Blender: the run is found again, and its
    model can be used."""
    import bpy

    module, _ = enable_addon(cfg)
    bpy.ops.wm.open_mainfile(filepath=str(Path(cfg["work"]) / "training.blend"))
    session = addon_part(module, "session")
    scene = bpy.context.scene
    run = scene.dance.training_runs[0]
    status = session.get().training_status(run.run_dir)
    bpy.ops.sequencer.dance_use_model(folder=status.bundle)
    info = addon_part(module, "core.bundles").read_bundle_info(scene.dance.model_path)
    write_result(cfg, {"name": run.name, "state": status.state, "summary": status.summary(),
                       "model_path": scene.dance.model_path, "bundle_name": info.name})


def scenario_screenshot(cfg):
    """Blender's user interface (not background mode): the installed add-on retargets a
    strip through its timer, and the sequencer with the Dance tab is saved as screenshots.

    Needs a display (xvfb-run) and ``--enable-event-simulate``: the sidebar tab is switched
    with simulated Ctrl+Wheel, the way a user can.
    """
    return drive_ui(cfg, UiPlan(presses=["retarget_dance"], flag="is_result"))


def scenario_screenshot_preview(cfg):
    """The user interface again: Preview Poses, the scale re-keyed, Preview Poses again; the
    timer updates the preview strip in place (an undo step of its own), photographed with the
    keyframed scale on screen. Then Undo brings the first preview's frames back, and Render
    (in its window) mutes the preview while it renders, showing it again at the end."""
    def rekey(scene, strip):
        rekey_scale(scene, strip, 17, 1.5)
        scene.frame_set(scene.frame_current)  # the sidebar shows the animated values again

    plan = UiPlan(presses=["preview_dance_poses", "preview_dance_poses"], flag="is_preview",
                  between=rekey, shot="screenshot_preview.png", undo_after=True, enlarge=False,
                  resolution=384, render_after=True)
    return drive_ui(cfg, plan)


def scenario_screenshot_bands(cfg):
    """The user interface with a 2:1 model in a 16:9 scene, above its 16:9 source strip:
    Retarget Dance, photograph the preview (the result with its bands), then render frame 15
    with the result muted and shown (see `scenario_bands`)."""
    plan = UiPlan(presses=["retarget_dance"], flag="is_result", shot="screenshot_bands.png",
                  enlarge=False, wide=True, render_bands=True)
    return drive_ui(cfg, plan)


class UiPlan:
    """What `drive_ui` does: press each operator in turn (``between(scene, strip)`` before
    each one after the first), photograph (the sequencer enlarged, or the template's layout
    with its larger preview), optionally undo once and render, and report the strips of
    ``flag``."""

    def __init__(self, presses, flag, between=None, shot="screenshot.png", undo_after=False,
                 enlarge=True, resolution=None, render_after=False, wide=False,
                 render_bands=False):
        self.presses, self.flag, self.between = list(presses), flag, between
        self.shot, self.undo_after, self.enlarge = shot, undo_after, enlarge
        self.resolution = resolution  # the scene's (square), for a sharper preview
        self.render_after = render_after  # press Render (frames 12-17) and wait for its end
        self.wide = wide  # a 16:9 scene and dancer, and the 2:1 model (not the demo's)
        self.render_bands = render_bands  # render frame 15 without and with the result


def drive_ui(cfg, plan):
    import bpy

    module, _ = enable_addon(cfg)
    compat, session = addon_part(module, "compat"), addon_part(module, "session")
    panels = addon_part(module, "ui.panels")
    scene, strip = set_up_scene(cfg, compat, blocker=False, wide=plan.wide)
    if plan.wide:
        scene.dance.model_path = cfg["wide_bundle"]
    elif cfg.get("use_demo"):
        scene.dance.model_path = ""  # the built-in demo performer, as a new user sees it
    scene.frame_current = 15
    if plan.resolution:
        scene.render.resolution_x = scene.render.resolution_y = plan.resolution
    window = bpy.context.window_manager.windows[0]
    sequencer = _largest_area(window, 'SEQUENCE_EDITOR', 'SEQUENCER')
    sequencer.spaces.active.show_region_ui = True
    drawn = {"model": False}
    original_draw = panels.DANCE_PT_model.draw

    def spy_draw(self, context):  # tells when the Dance tab is the one shown
        drawn["model"] = True
        original_draw(self, context)

    panels.DANCE_PT_model.draw = spy_draw
    state = {"step": "splash", "tries": 0, "progress_shot": False, "t0": time.monotonic(),
             "pressed": 0, "shown": []}
    out = Path(cfg["work"])

    def shot(name):
        with bpy.context.temp_override(window=window, area=sequencer):
            bpy.ops.screen.screenshot(filepath=str(out / name))

    def press():
        if state["pressed"] and plan.between is not None:
            plan.between(scene, strip)
        with bpy.context.temp_override(window=window, area=sequencer):
            name = plan.presses[state["pressed"]]
            # undo=True: the undo step a button press makes (scripts' calls make none)
            assert getattr(bpy.ops.sequencer, name)('INVOKE_DEFAULT', True) == {'FINISHED'}
        state["pressed"] += 1
        state["step"] = "running"

    def step():
        sidebar = next(r for r in sequencer.regions if r.type == 'UI')
        x, y = sidebar.x + sidebar.width // 2, sidebar.y + sidebar.height // 2
        if state["step"] == "splash":  # factory settings open the splash screen: close it
            window.event_simulate('MOUSEMOVE', 'NOTHING', x=x, y=y)
            window.event_simulate('ESC', 'PRESS')
            window.event_simulate('ESC', 'RELEASE')
            if plan.enlarge:
                _enlarge(window, sequencer)
            state["step"] = "tab"
            return 0.3
        if state["step"] == "tab":
            if drawn["model"]:
                _view_all(window, sequencer)
                press()
                return 0.2
            if state["tries"] >= 12:
                shot("screenshot_failed.png")
            assert state["tries"] < 12, "the Dance tab never showed"
            state["tries"] += 1
            drawn["model"] = False
            window.event_simulate('WHEELDOWNMOUSE', 'PRESS', x=x, y=y, ctrl=True)
            sequencer.tag_redraw()
            return 0.3
        job = session.get().runner.queue.jobs[-1]
        if job.state.value == "running" and job.stage == "generate" and not state["progress_shot"]:
            shot("screenshot_progress.png")
            state["progress_shot"] = True
        if job.state.finished and state["step"] == "running":
            state["shown"].append(result_strips(compat, scene, plan.flag))
            if job.state.value == "done" and state["pressed"] < len(plan.presses):
                press()
                return 0.2
            state["step"] = "settle"  # one more redraw with the new strip before the picture
            sequencer.tag_redraw()
            return 0.5
        if state["step"] == "settle":
            shot(plan.shot)
            if plan.render_bands:
                render_bands()
            if plan.undo_after:
                with bpy.context.temp_override(window=window, area=sequencer):
                    state["undo"] = sorted(bpy.ops.ed.undo())
            state["results"] = result_strips(compat, bpy.context.scene, plan.flag)
            if not plan.render_after:
                return finish(job)
            render_in_window()
            return 0.5
        if state["step"] == "rendering":  # until the render ends and the previews show again
            if any(s["mute"] for s in result_strips(compat, bpy.context.scene, plan.flag)):
                assert time.monotonic() - state["t0"] < 240, "the render did not end"
                return 0.5
            return finish(job)
        assert time.monotonic() - state["t0"] < 240, "the job did not finish"
        return 0.2

    def render_bands():
        [result] = [s for s in compat.all_strips(compat.editor(scene)) if s.dance.is_result]
        state["blend"] = result.blend_type
        result.mute = True
        render_still(scene, out / "source.png")
        result.mute = False
        render_still(scene, out / "opaque.png")

    def render_in_window():
        """The Render button, as in the Queue panel: the render runs in its own window."""
        scene_now = bpy.context.scene  # (undo replaced the data-blocks)
        scene_now.frame_start, scene_now.frame_end = 12, 17
        path = out / "render.mp4"
        with bpy.context.temp_override(window=window, area=sequencer):
            started = bpy.ops.sequencer.dance_render_video('INVOKE_DEFAULT', filepath=str(path))
        muted = [s["mute"] for s in result_strips(compat, scene_now, plan.flag)]
        state["render"] = {"path": str(path), "started": sorted(started), "muted": muted}
        state["step"] = "rendering"

    def finish(job):
        write_result(cfg, {"results": state.get("results"), "shown": state["shown"],
                           "undo": state.get("undo"), "render": state.get("render"),
                           "after_render": result_strips(compat, bpy.context.scene, plan.flag),
                           "state": job.state.value, "message": job.message,
                           "progress_shot": state["progress_shot"],
                           "blend": state.get("blend"),
                           "scene_size": [bpy.context.scene.render.resolution_x,  # (undo
                                          bpy.context.scene.render.resolution_y]})  # replaced it)
        print("SCENARIO screenshot OK", flush=True)
        session.shutdown()
        bpy.ops.wm.quit_blender()
        return None

    def guarded():
        try:
            return step()
        except BaseException as exc:  # a failing timer must end Blender, not hang the test
            import traceback

            traceback.print_exc()
            print(f"SCENARIO screenshot FAILED: {exc!r}", flush=True)
            sys.stdout.flush()
            import os

            os._exit(1)

    bpy.app.timers.register(guarded, first_interval=1.0)
    return "async"


def _largest_area(window, space, view_type):
    areas = [a for a in window.screen.areas if a.type == space
             and getattr(a.spaces.active, "view_type", view_type) == view_type]
    return max(areas, key=lambda a: a.width * a.height)


def _enlarge(window, area):
    """Give the sequencer (and its sidebar) most of the window's height."""
    import bpy

    top = area.y + area.height  # the edge between the preview above and the sequencer
    with bpy.context.temp_override(window=window, area=area):
        bpy.ops.screen.area_move(x=area.x + area.width // 2, y=top, delta=window.height // 6)


def _view_all(window, area):
    region = next(r for r in area.regions if r.type == 'WINDOW')
    with bpy_override(window=window, area=area, region=region):
        import bpy

        bpy.ops.sequencer.view_all()


def bpy_override(**kwargs):
    import bpy

    return bpy.context.temp_override(**kwargs)


SCENARIOS = {name[len("scenario_"):]: fn for name, fn in dict(globals()).items()
             if name.startswith("scenario_")}


def main(argv):
    args = argv[argv.index("--") + 1:] if "--" in argv else argv[1:]
    scenario, config = args[0], json.loads(Path(args[1]).read_text())
    import bpy  # noqa: F401  (first: Blender's own modules such as addon_utils need it loaded)

    if SCENARIOS[scenario](config) != "async":  # "async": it reports from a timer
        print(f"SCENARIO {scenario} OK", flush=True)


if __name__ == "__main__":
    main(sys.argv)
