"""Motions of the demo performer: a dance (the default source) and free movement (a target).

A motion is a set of joint-angle curves over time (one array per name in
``skeleton.REST_POSE``), built from smooth periodic functions so that it is
deterministic for a seed and has no jumps. ``curves_to_track`` runs the skeleton and
the camera on every frame and returns the exact keypoints as a ``PoseTrack``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..pose.track import PoseTrack
from .skeleton import (ARM_SPAN_M, REST_POSE, Camera, Proportions, keypoints_3d, nearest_distance,
                       project_pose, stage_camera)

Curves = dict[str, np.ndarray]



def rest_curves(n_frames: int) -> Curves:
    """Every pose value held at its resting value for ``n_frames``."""
    return {name: np.full(n_frames, value, dtype=np.float64) for name, value in REST_POSE.items()}


def smooth_noise(rng: np.random.Generator, t: np.ndarray, period_s: tuple[float, float],
                 terms: int = 3) -> np.ndarray:
    """A smooth random curve in (-1, 1): a few sinusoids of random period and phase."""
    periods = rng.uniform(*period_s, size=terms)
    phases = rng.uniform(0, 2 * np.pi, size=terms)
    amps = rng.uniform(0.5, 1.0, size=terms)
    wave = sum(a * np.sin(2 * np.pi * t / p + ph) for a, p, ph in zip(amps, periods, phases))
    unit = wave / np.sqrt(np.sum(amps ** 2) / 2)  # unit variance
    return np.tanh(0.9 * unit)


def side_room(camera: Camera, dist: np.ndarray | float, body_size: float = 1.0,
              margin: float = 0.03) -> np.ndarray:
    """How far (metres) the performer may stand from the centre line at ``dist``
    with arms outstretched and still be in the frame."""
    half = camera.size[0] / 2 - margin * camera.size[1]
    return np.maximum(half * np.asarray(dist) / camera.focal - ARM_SPAN_M * body_size, 0.0)


def _stage(size: tuple[int, int], prop: Proportions) -> tuple[Camera, float]:
    """The camera (the same for every performer) and how near this one may come."""
    camera = stage_camera(size)
    return camera, nearest_distance(camera, prop.size)


def curves_to_track(curves: Curves, fps: float, size: tuple[int, int], camera: Camera,
                    detector: dict, prop: Proportions = Proportions()) -> PoseTrack:
    """Exact keypoints of every frame of ``curves`` as the camera sees them."""
    n_frames = len(curves["x"])
    track = PoseTrack.empty(n_frames, fps, size, detector)
    for i in range(n_frames):
        pose = {name: float(values[i]) for name, values in curves.items()}
        points = keypoints_3d(pose, prop)
        track.set_frame(i, project_pose(points, camera, pose["x"], pose["dist"], pose["yaw"]))
    track.detected[:] = True
    return track


def _check(n_frames: int, fps: float) -> None:
    if n_frames < 1:
        raise ValueError(f"a motion needs at least one frame, got {n_frames}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")


# -- the dance ------------------------------------------------------------------------

# A dance move sets some curves from the beat phase ``th`` (radians, 2*pi per beat) and
# ``bounce`` (0 on the beat .. 1 between beats); the rest stay at rest.
Move = Callable[[Curves, np.ndarray, np.ndarray], None]


def _both(c: Curves, name: str, right: np.ndarray | float, left: np.ndarray | float) -> None:
    c["r_" + name] = np.broadcast_to(right, c["x"].shape).astype(float)
    c["l_" + name] = np.broadcast_to(left, c["x"].shape).astype(float)


def move_wave(c: Curves, th: np.ndarray, bounce: np.ndarray) -> None:
    """Arms out to the sides, a wave running through them; knees bounce on the beat."""
    _both(c, "shoulder_abd", 85 + 18 * np.sin(th / 2), 85 + 18 * np.sin(th / 2 + 1.5))
    _both(c, "arm_twist", 70, 70)
    _both(c, "elbow", 35 + 30 * np.sin(th / 2 - 1.0), 35 + 30 * np.sin(th / 2 + 0.5))
    _both(c, "wrist", 30 * np.sin(th / 2 - 2.0), 30 * np.sin(th / 2 - 0.5))
    _both(c, "pronation", 20, 20)
    _both(c, "curl", 0.1, 0.1)
    _both(c, "spread", 0.8, 0.8)
    _both(c, "knee", 6 + 18 * bounce, 6 + 18 * bounce)
    c["chest_side"] = 7 * np.sin(th / 2)
    c["head_roll"] = -8 * np.sin(th / 2)


def move_steps(c: Curves, th: np.ndarray, bounce: np.ndarray) -> None:
    """Side steps with arms swinging, the chest twisting against the hips."""
    step = np.sin(th / 2)
    _both(c, "hip_abd", 4 + 14 * np.maximum(-step, 0), 4 + 14 * np.maximum(step, 0))
    _both(c, "knee", 8 + 10 * bounce + 20 * np.maximum(-step, 0), 8 + 10 * bounce + 20 * np.maximum(step, 0))
    _both(c, "shoulder_flex", 10 + 45 * step, 10 - 45 * step)
    _both(c, "shoulder_abd", 25, 25)
    _both(c, "elbow", 70 + 20 * step, 70 - 20 * step)
    _both(c, "curl", 0.9, 0.9)
    c["chest_twist"] = 14 * step
    c["x"] = 0.12 * np.sin(th / 4)
    c["head_yaw"] = -10 * step


def move_raise_the_roof(c: Curves, th: np.ndarray, bounce: np.ndarray) -> None:
    """Both arms up, pushing on the beat; jazz hands; hips sway."""
    _both(c, "shoulder_abd", 145 + 12 * np.sin(th), 145 + 12 * np.sin(th))
    _both(c, "shoulder_flex", 10, 10)
    _both(c, "arm_twist", 80, 80)
    _both(c, "elbow", 40 + 30 * np.cos(th), 40 + 30 * np.cos(th))
    _both(c, "pronation", 0, 0)
    _both(c, "curl", 0.5 - 0.5 * np.cos(th / 2), 0.5 - 0.5 * np.cos(th / 2))
    _both(c, "spread", 1.0, 1.0)
    _both(c, "knee", 8 + 14 * bounce, 8 + 14 * bounce)
    c["pelvis_tilt"] = 8 * np.sin(th / 2)
    c["chest_side"] = -6 * np.sin(th / 2)
    c["head_roll"] = 10 * np.sin(th / 2)
    c["head_pitch"] = -10.0
    c["mouth_open"] = 0.6 + 0.0 * th
    c["brow_raise"] = 0.8 + 0.0 * th


def move_point(c: Curves, th: np.ndarray, bounce: np.ndarray) -> None:
    """Disco point: right arm up to the corner and down across, left hand on the hip."""
    snap = np.tanh(3 * np.sin(th / 2))  # -1 / 1, switching every beat
    c["r_shoulder_abd"] = 100 + 50 * snap
    c["r_shoulder_flex"] = 25 - 15 * snap
    c["r_elbow"] = 8 + 0 * th
    c["r_curl"] = 0.85 + 0 * th
    c["l_shoulder_abd"] = 45 + 0 * th
    c["l_shoulder_flex"] = -15 + 0 * th
    c["l_elbow"] = 105 + 0 * th
    c["l_pronation"] = 90 + 0 * th
    c["l_wrist"] = -30 + 0 * th
    c["pelvis_tilt"] = -7 * snap
    c["chest_side"] = 5 * snap
    c["head_yaw"] = 22 * snap
    c["head_pitch"] = -12 * (snap + 1) / 2
    c["gaze_x"] = -0.7 * snap
    _both(c, "knee", 10 + 12 * bounce, 10 + 12 * bounce)
    c["r_hip_abd"] = 6 + 8 * (1 + snap)


def move_knee_lifts(c: Curves, th: np.ndarray, bounce: np.ndarray) -> None:
    """Alternate knee lifts with the elbows pumping."""
    right = np.maximum(np.sin(th / 2), 0) ** 1.5
    left = np.maximum(-np.sin(th / 2), 0) ** 1.5
    _both(c, "hip_flex", 65 * right, 65 * left)
    _both(c, "knee", 8 + 85 * right, 8 + 85 * left)
    _both(c, "shoulder_abd", 30, 30)
    _both(c, "shoulder_flex", 20 + 35 * left, 20 + 35 * right)
    _both(c, "elbow", 95, 95)
    _both(c, "curl", 1.0, 1.0)
    c["chest_lean"] = 6 + 6 * (left + right)
    c["head_pitch"] = 8 * (left + right)
    c["mouth_open"] = 0.2 + 0.5 * (left + right)


def move_twist(c: Curves, th: np.ndarray, bounce: np.ndarray) -> None:
    """The twist: knees bent, chest and arms swinging against the hips."""
    swing = np.sin(th)
    _both(c, "knee", 30 + 12 * bounce, 30 + 12 * bounce)
    _both(c, "hip_flex", 15 + 6 * bounce, 15 + 6 * bounce)
    _both(c, "hip_abd", 10, 10)
    c["chest_lean"] = 12 + 0 * th
    c["chest_twist"] = 22 * swing
    _both(c, "shoulder_abd", 45 + 10 * swing, 45 - 10 * swing)
    _both(c, "shoulder_flex", 25 - 30 * swing, 25 + 30 * swing)
    _both(c, "elbow", 85, 85)
    _both(c, "curl", 0.7, 0.7)
    c["head_yaw"] = -12 * swing
    c["head_pitch"] = -5 + 0 * th


DANCE_MOVES: tuple[Move, ...] = (move_wave, move_steps, move_raise_the_roof, move_point,
                                 move_knee_lifts, move_twist)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0, 1)
    return x * x * (3 - 2 * x)


def dance_motion(n_frames: int, fps: float = 30.0, size: tuple[int, int] = (512, 512),
                 seed: int = 0, bpm: float | None = None, beats_per_move: int = 8,
                 proportions: Proportions = Proportions(), distance: float | None = None) -> PoseTrack:
    """A lively dance of ``n_frames``: the built-in source motion, exact keypoints.

    Moves (arm waves, side steps, arms up, disco points, knee lifts, the twist) follow
    each other in an order drawn from ``seed``, each for ``beats_per_move`` beats, with a
    one-beat blend between them. The performer slowly turns and stays in frame.
    ``distance`` (metres from the camera) places the dancer further away than the
    default, as near as fits; nearer than that, raised hands may leave the frame.
    """
    _check(n_frames, fps)
    rng = np.random.default_rng(seed)
    bpm = float(bpm if bpm is not None else rng.uniform(108, 126))
    camera, near = _stage(size, proportions)
    t = np.arange(n_frames) / fps
    beats = t * bpm / 60
    th = 2 * np.pi * beats
    bounce = 0.5 - 0.5 * np.cos(th)

    order = rng.permutation(len(DANCE_MOVES))
    n_slots = int(np.ceil(beats[-1] / beats_per_move)) + 2
    blended = {name: np.zeros(n_frames) for name in REST_POSE}
    total = np.zeros(n_frames)
    for slot in range(n_slots):
        move = DANCE_MOVES[order[slot % len(order)]]
        # Weight 1 inside its slot, fading over one beat on each side.
        start = slot * beats_per_move
        weight = _smoothstep(beats - start + 0.5) * _smoothstep(start + beats_per_move + 0.5 - beats)
        if not weight.any():
            continue
        curves = rest_curves(n_frames)
        move(curves, th, bounce)
        for name in REST_POSE:
            blended[name] += weight * curves[name]
        total += weight
    curves = {name: values / total for name, values in blended.items()}

    # Slow turns, the head looking around, singing along: over every move.
    curves["yaw"] = curves["yaw"] + 28 * smooth_noise(rng, t, (7, 12))
    curves["head_yaw"] = curves["head_yaw"] + 15 * smooth_noise(rng, t, (3, 6))
    curves["mouth_open"] = np.clip(curves["mouth_open"] + 0.3 * np.maximum(np.sin(th / 4), 0), 0, 1)
    dist = near * 1.04 if distance is None else float(distance)
    curves["dist"] = np.full(n_frames, dist)
    room = float(side_room(camera, dist, proportions.size))
    curves["x"] = np.clip(curves["x"] + 0.5 * room * smooth_noise(rng, t, (8, 14)), -room, room)
    detector = {"name": "demo-performer", "motion": "dance", "seed": int(seed), "bpm": round(bpm, 2),
                "body_size": proportions.size}
    return curves_to_track(curves, fps, size, camera, detector, proportions)


# -- free movement for a target training video ----------------------------------------

def target_motion(n_frames: int, fps: float = 30.0, size: tuple[int, int] = (512, 512),
                  seed: int = 0, far_factor: float = 1.7,
                  proportions: Proportions = Proportions()) -> PoseTrack:
    """Varied free movement of ``n_frames``: what a target person films for training.

    The performer walks towards the camera and away from it (from the nearest distance
    that keeps raised hands in frame to ``far_factor`` times as far), wanders sideways,
    turns, and moves arms, legs, head and hands through a wide range of poses.
    """
    _check(n_frames, fps)
    rng = np.random.default_rng(seed + 7919)  # a different stream from the dance's
    camera, near = _stage(size, proportions)
    t = np.arange(n_frames) / fps
    c = rest_curves(n_frames)

    # Where it stands: a slow back-and-forth between near and far, wandering sideways.
    period = rng.uniform(7, 10)
    depth = 0.5 - 0.5 * np.cos(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    c["dist"] = near * (1.1 + (far_factor - 1.1) * depth)
    c["x"] = 0.85 * side_room(camera, c["dist"], proportions.size) * smooth_noise(rng, t, (6, 11))
    vx = np.gradient(c["x"], t) if n_frames > 1 else np.zeros(1)
    vz = np.gradient(c["dist"], t) if n_frames > 1 else np.zeros(1)
    speed = np.hypot(vx, vz)
    c["yaw"] = 40 * smooth_noise(rng, t, (5, 9)) + 25 * np.clip(vx / 0.4, -1, 1)

    # Walking: legs and arms swing with a phase that advances with the distance covered.
    gait = np.clip(speed / 0.35, 0, 1)
    phase = 2 * np.pi * np.cumsum(speed) / fps / 1.3  # a stride (two steps) is ~1.3 m
    swing = np.sin(phase)
    squat = np.maximum(smooth_noise(rng, t, (4, 8)), 0) * (1 - gait)
    _both(c, "hip_flex", 22 * gait * swing + 40 * squat, -22 * gait * swing + 40 * squat)
    _both(c, "knee", 5 + 40 * gait * np.maximum(np.sin(phase + 1.3), 0) + 80 * squat,
          5 + 40 * gait * np.maximum(np.sin(phase + 1.3 + np.pi), 0) + 80 * squat)
    for side in ("r_", "l_"):
        lift = np.maximum(smooth_noise(rng, t, (3, 7)), 0) * (1 - gait)
        c[side + "hip_abd"] = 5 + 25 * lift
        c[side + "foot_out"] = 10 + 10 * smooth_noise(rng, t, (4, 8))

    # Arms, hands, spine and head: independent smooth wandering over their whole range.
    arm_swing = {"r_": -swing, "l_": swing}
    for side in ("r_", "l_"):
        c[side + "shoulder_abd"] = np.clip(50 + 90 * smooth_noise(rng, t, (3, 7)), 0, 170)
        c[side + "shoulder_flex"] = 10 + 55 * smooth_noise(rng, t, (3, 7)) + 25 * gait * arm_swing[side]
        c[side + "arm_twist"] = 30 + 50 * smooth_noise(rng, t, (3, 7))
        c[side + "elbow"] = np.clip(45 + 75 * smooth_noise(rng, t, (2, 5)), 0, 150)
        c[side + "pronation"] = 45 + 45 * smooth_noise(rng, t, (2, 5))
        c[side + "wrist"] = 25 * smooth_noise(rng, t, (2, 4))
        c[side + "curl"] = 0.5 + 0.5 * smooth_noise(rng, t, (1.5, 4))
        c[side + "spread"] = 0.5 + 0.5 * smooth_noise(rng, t, (2, 5))
    c["chest_twist"] = 15 * smooth_noise(rng, t, (3, 7))
    c["chest_side"] = 10 * smooth_noise(rng, t, (3, 7))
    c["chest_lean"] = 8 + 10 * smooth_noise(rng, t, (4, 8)) + 20 * squat
    c["pelvis_tilt"] = 6 * smooth_noise(rng, t, (3, 6))
    c["head_yaw"] = 35 * smooth_noise(rng, t, (2, 5))
    c["head_pitch"] = 15 * smooth_noise(rng, t, (2, 5))
    c["head_roll"] = 10 * smooth_noise(rng, t, (2, 5))
    c["mouth_open"] = np.clip(0.3 + 0.5 * smooth_noise(rng, t, (0.8, 2.5)), 0, 1)
    c["brow_raise"] = np.clip(0.5 * smooth_noise(rng, t, (2, 5)) + 0.3, 0, 1)
    c["gaze_x"] = smooth_noise(rng, t, (1, 3))
    detector = {"name": "demo-performer", "motion": "target", "seed": int(seed),
                "body_size": proportions.size}
    return curves_to_track(c, fps, size, camera, detector, proportions)
