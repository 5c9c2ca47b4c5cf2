"""OpenPose keypoint layouts: names, indices and the connections drawn in a stick figure.

BODY_25 is OpenPose's default body model; the paper's BODY_23 (OpenPose's old BODY_23 model, as
the official code maps it) is the same body without the two heels, in its own point order, so
everything here is written in BODY_25 and BODY_23 is a view of it. The face has 70 points (the 68-point
iBUG layout plus the two pupils) and each hand 21 (wrist, then 4 per finger from thumb to pinky).
"""

from __future__ import annotations

BODY_25_NAMES: tuple[str, ...] = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
    "MidHip", "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye",
    "REar", "LEar", "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)
BODY = {name: i for i, name in enumerate(BODY_25_NAMES)}

# OpenPose's BODY_25 palette (POSE_BODY_25_COLORS_RENDER), RGB, one per keypoint.
BODY_25_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 85), (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0),
    (85, 255, 0), (0, 255, 0), (255, 0, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255),
    (0, 170, 255), (0, 85, 255), (0, 0, 255), (255, 0, 170), (170, 0, 255), (255, 0, 255),
    (85, 0, 255), (0, 0, 255), (0, 0, 255), (0, 0, 255), (0, 255, 255), (0, 255, 255),
    (0, 255, 255),
)

# BODY_23 as the official code has it (renderopenpose.py: map_25_to_23, get_pose_stats with
# nose 18 / ankles 10, 15, renderpose23): every BODY_25 point except the two heels, reordered to
# OpenPose's BODY_23 order (neck first, nose 18). ``body25[BODY_23_FROM_25]`` is the BODY_23 array.
BODY_23_FROM_25: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 22, 23, 12, 13, 14, 19, 20,
                                    0, 15, 17, 16, 18)
# The official BODY_23 stick figure (renderpose23), in BODY_23 indices; a limb takes the colour of
# its first point there.
BODY_23_LIMBS: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8), (8, 9), (9, 10), (10, 11),
    (10, 12), (7, 13), (13, 14), (14, 15), (15, 16), (15, 17), (0, 18), (18, 19), (19, 20),
    (18, 21), (21, 22),
)
# The official BODY_23 palette (renderpose23), RGB, one per BODY_23 point; its 212.5 is rounded down.
BODY_23_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 55, 0), (255, 110, 0), (255, 165, 0), (255, 215, 0), (255, 235, 0),
    (255, 255, 0), (255, 0, 0), (175, 255, 0), (85, 255, 0), (0, 255, 0), (0, 255, 85),
    (0, 255, 170), (25, 25, 128), (0, 85, 255), (0, 170, 255), (0, 212, 255), (0, 255, 255),
    (255, 0, 0), (255, 0, 255), (238, 130, 238), (138, 43, 226), (75, 0, 130),
)

# The 18-point COCO layout (OpenPose's COCO model) mapped into BODY_25 indices, for JSON import.
COCO_18_TO_BODY_25: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)

# Face: 70 points, the iBUG-68 layout (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, lips
# 48-67) plus the pupils.
FACE_RIGHT_EYE = tuple(range(36, 42))
FACE_LEFT_EYE = tuple(range(42, 48))
FACE_RIGHT_PUPIL, FACE_LEFT_PUPIL = 68, 69

# Hands: wrist 0, then thumb 1-4, index 5-8, middle 9-12, ring 13-16, pinky 17-20.
HAND_LEFT, HAND_RIGHT = 0, 1
HAND_FINGERS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))
