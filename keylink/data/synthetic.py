"""Synthetic images of a 2D articulated figure with known joint positions.

Each image shows one roughly upright figure facing the viewer (so "left" limbs are on the image
left): a head, a tapered torso, and two-segment arms and legs with random joint angles, colours,
body textures and smooth backgrounds. It serves as a ground-truth data set for the demo and the
tests: a keypoint detector can be trained on the images and compared with the true joints.

Coordinate convention: a joint is (x, y) in pixels of the returned image, where pixel (0, 0)
covers [0, 1) x [0, 1); the centre of the top-left pixel is therefore (0.5, 0.5). Joints that
are drawn (everything except ``neck`` and ``pelvis``) lie on a 1/4-pixel grid so that the
supersampled drawing is centred on them exactly.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["JOINT_NAMES", "LIMBS", "SKELETON", "generate", "render_figure", "write_dataset"]

# Degrees an elbow bends at most, either way. With bends up to 120 degrees (sessions 1 to 23) a
# short CPU run put one keypoint on each arm, sliding along it from figure to figure, so the
# forearm was drawn at most in part; bent this little, a straight edge from the shoulder follows
# the arm, and runs that reach the arms put a keypoint near the hand (BENCHMARKS.md, session 24;
# the demo reaches them in some runs only). Knees bend up to 100 degrees.
ELBOW_BEND_MAX = 45.0

JOINT_NAMES: tuple[str, ...] = (
    "head",
    "neck",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "pelvis",
)

SKELETON: tuple[tuple[int, int], ...] = (
    (0, 1),  # head - neck
    (1, 14),  # neck - pelvis
    (2, 3),  # shoulders
    (8, 9),  # hips
    (2, 4),  # left shoulder - elbow
    (4, 6),  # left elbow - wrist
    (3, 5),  # right shoulder - elbow
    (5, 7),  # right elbow - wrist
    (8, 10),  # left hip - knee
    (10, 12),  # left knee - ankle
    (9, 11),  # right hip - knee
    (11, 13),  # right knee - ankle
)

# The four limbs as chains of joints (indices into JOINT_NAMES), for how much of each the learned
# skeleton draws (keylink.evaluate.limb_coverage).
LIMBS: dict[str, tuple[int, ...]] = {
    "left_arm": (2, 4, 6),
    "right_arm": (3, 5, 7),
    "left_leg": (8, 10, 12),
    "right_leg": (9, 11, 13),
}

_SS = 2  # supersampling factor of the drawing canvas
_GRID = 1.0 / (2 * _SS)  # drawn joints are snapped to this grid (final-image pixels)
_LUMA = np.array([0.299, 0.587, 0.114])
_MIN_LUMA_GAP = 0.3  # body vs. background base luminance
_BG_LUMA_SPREAD = 0.08  # background colours stay within this luminance of their base
_DEG = math.pi / 180.0

# Part ids on the drawing canvas (0 is background); each id gets a colour and a texture flag.
_TORSO, _HEAD, _UPPER_ARM, _FOREARM, _THIGH, _SHIN = 1, 2, 3, 4, 5, 6
_N_PARTS = 7


# ----------------------------------------------------------------------------------------------
# Drawing on a supersampled canvas
# ----------------------------------------------------------------------------------------------


def _snap(v: float) -> float:
    """Nearest point of the grid on which discs can be centred exactly."""
    return round(v / _GRID) * _GRID


class _Canvas:
    """A part-id image at ``_SS`` times the output resolution, drawn with PIL.

    PIL puts integer coordinates at pixel centres and fills the pixels of both end points, so a
    shape drawn from integer a to b covers [a - 0.5, b + 0.5] in canvas units. The final-image
    point x is canvas point _SS * x, i.e. PIL coordinate _SS * x - 0.5.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.image = Image.new("L", (size * _SS, size * _SS), 0)
        self._draw = ImageDraw.Draw(self.image)

    @staticmethod
    def _axis_span(c: float, r: float) -> tuple[int, int]:
        # Twice the PIL centre is an integer, so the (inclusive) span lo..2c-lo is symmetric.
        c2 = round(2 * (_SS * c - 0.5))
        half = max(_SS * r - 0.5, 0.0)
        lo = min(math.floor(c2 / 2 - half + 0.5), c2 // 2)
        return lo, c2 - lo

    def ellipse(self, centre: tuple[float, float], rx: float, ry: float, value: int) -> None:
        """Axis-aligned filled ellipse; exactly centred when ``centre`` lies on the snap grid."""
        x0, x1 = self._axis_span(centre[0], rx)
        y0, y1 = self._axis_span(centre[1], ry)
        self._draw.ellipse((x0, y0, x1, y1), fill=value)

    def disc(self, centre: tuple[float, float], radius: float, value: int) -> None:
        self.ellipse(centre, radius, radius, value)

    def polygon(self, points: list[tuple[float, float]], value: int) -> None:
        # PIL truncates float vertices; round instead so the error is symmetric.
        pts = [(round(_SS * x - 0.5), round(_SS * y - 0.5)) for x, y in points]
        self._draw.polygon(pts, fill=value)

    def segment(
        self,
        p: tuple[float, float],
        q: tuple[float, float],
        width_p: float,
        width_q: float,
        value: int,
    ) -> None:
        """Tapered thick segment with round ends (a quad plus a disc at each end)."""
        dx, dy = q[0] - p[0], q[1] - p[1]
        length = math.hypot(dx, dy)
        if length > 1e-6:
            nx, ny = -dy / length, dx / length
            # PIL adds half a canvas pixel around polygons; compensate in the half-widths.
            a = max(width_p / 2 - 0.5 / _SS, 0.0)
            b = max(width_q / 2 - 0.5 / _SS, 0.0)
            self.polygon(
                [
                    (p[0] + nx * a, p[1] + ny * a),
                    (q[0] + nx * b, q[1] + ny * b),
                    (q[0] - nx * b, q[1] - ny * b),
                    (p[0] - nx * a, p[1] - ny * a),
                ],
                value,
            )
        self.disc(p, width_p / 2, value)
        self.disc(q, width_q / 2, value)

    def downsample(self, table: list[int] | None = None) -> np.ndarray:
        """Box-filtered (size, size) uint8 image of the canvas mapped through a 256-entry table."""
        im = self.image if table is None else self.image.point(table)
        return np.asarray(im.resize((self.size, self.size), Image.Resampling.BOX))

    def downsample_rgb(self, palette: np.ndarray) -> np.ndarray:
        """Box-filtered (size, size, 3) uint8 image, part ids coloured by ``palette`` (k, 3)."""
        pal = np.zeros((256, 3), np.uint8)
        pal[: len(palette)] = palette
        im = self.image.copy()
        im.putpalette(pal.tobytes())  # turns the "L" id image into a "P" image
        im = im.convert("RGB").resize((self.size, self.size), Image.Resampling.BOX)
        return np.asarray(im)


# ----------------------------------------------------------------------------------------------
# Colours, backgrounds and textures (floats in [0, 1])
# ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = np.arange(size, dtype=np.float32) + 0.5
    return c[None, :], c[:, None]


def _colours(rng: np.random.Generator, luma: np.ndarray, sat: tuple[float, float]) -> np.ndarray:
    """Random hues with the requested luminances, shape (n, 3)."""
    luma = np.clip(np.atleast_1d(np.asarray(luma, dtype=np.float64)), 0.0, 1.0)
    n = luma.shape[0]
    hue = rng.random(n)[:, None]
    s = rng.uniform(sat[0], sat[1], n)[:, None]
    rgb = np.clip(np.abs((hue * 6 + np.array([0.0, 4.0, 2.0])) % 6 - 3) - 1, 0, 1)
    c = 1 - s + s * rgb
    l0 = c @ _LUMA
    # Mixing with white (or scaling towards black) moves the luminance linearly to the target
    # without any channel leaving [0, 1].
    t = (luma - l0) / np.maximum(1 - l0, 1e-6)
    up = c + t[:, None] * (1 - c)
    down = c * (luma / np.maximum(l0, 1e-6))[:, None]
    return np.where((luma > l0)[:, None], up, down)


def _far_luma(rng: np.random.Generator, base: float, n: int) -> np.ndarray:
    """Luminances at least ``_MIN_LUMA_GAP`` away from ``base``, uniform over what is left."""
    low = max(base - _MIN_LUMA_GAP, 0.0)
    high = max(1.0 - base - _MIN_LUMA_GAP, 0.0)
    u = rng.random(n) * (low + high)
    return np.where(u < low, u, base + _MIN_LUMA_GAP + (u - low))


def _background(rng: np.random.Generator, size: int) -> tuple[np.ndarray, float]:
    """Low-frequency background (size, size, 3) float32 and its base luminance."""
    base = float(rng.uniform(0.05, 0.95))
    kind = int(rng.integers(3))
    if kind == 0:  # flat
        col = _colours(rng, np.array([base]), (0.0, 0.8))[0]
        bg = np.broadcast_to(col.astype(np.float32), (size, size, 3))
    elif kind == 1:  # linear gradient between two colours of similar luminance
        lum = base + rng.uniform(-_BG_LUMA_SPREAD, _BG_LUMA_SPREAD, 2)
        c0, c1 = _colours(rng, lum, (0.0, 0.8)).astype(np.float32)
        ang = rng.uniform(0, 2 * math.pi)
        xs, ys = _pixel_grid(size)
        t = ((xs - size / 2) * math.cos(ang) + (ys - size / 2) * math.sin(ang)) / size + 0.5
        t = np.clip(t, 0.0, 1.0)[..., None]
        bg = c0 + t * (c1 - c0)
    else:  # smooth colour noise: a few large blobs from an upsampled coarse grid
        k = int(rng.integers(2, 5))
        lum = base + rng.uniform(-_BG_LUMA_SPREAD, _BG_LUMA_SPREAD, k * k)
        cols = _colours(rng, lum, (0.0, 0.6)).reshape(k, k, 3)
        small = Image.fromarray(np.round(cols * 255).astype(np.uint8))
        big = small.resize((size, size), Image.Resampling.BICUBIC)
        bg = np.asarray(big, dtype=np.float32) / 255.0
    return bg, base


def _texture(rng: np.random.Generator, size: int) -> np.ndarray | None:
    """Zero-mean body texture in [-1, 1] (stripes or noise), or None for solid colour."""
    kind = int(rng.integers(3))
    if kind == 0:
        return None
    if kind == 1:
        period = rng.uniform(0.05, 0.12) * size
        ang = rng.uniform(0, math.pi)
        phase = rng.uniform(0, 2 * math.pi)
        xs, ys = _pixel_grid(size)
        arg = (xs * math.cos(ang) + ys * math.sin(ang)) * (2 * math.pi / period) + phase
        return np.clip(2.0 * np.sin(arg), -1.0, 1.0)
    g = max(size // 8, 2)
    small = Image.fromarray(rng.standard_normal((g, g)).astype(np.float32))  # mode "F"
    noise = np.asarray(small.resize((size, size), Image.Resampling.BICUBIC))
    return np.clip(noise, -1.0, 1.0)


# ----------------------------------------------------------------------------------------------
# The figure
# ----------------------------------------------------------------------------------------------


def _limb_dir(side: float, angle: float) -> tuple[float, float]:
    """Unit vector at ``angle`` (radians) from hanging straight down, positive = away from
    the body midline; ``side`` is -1 for the image-left limb and +1 for the right one."""
    return side * math.sin(angle), math.cos(angle)


def render_figure(rng: np.random.Generator, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """One image (size, size, 3) uint8 RGB and its joints (15, 2) float32, pixel coords as above."""
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    u = rng.uniform

    # --- Proportions, in units of the nominal standing height (jittered by about 10%). ---
    j = u(0.9, 1.1, 9)
    torso_len = 0.30 * j[0]
    shoulder_half = 0.115 * j[1]
    hip_half = 0.07 * j[2]
    upper_arm, forearm = 0.17 * j[3], 0.15 * j[4]
    thigh, shin = 0.23 * j[5], 0.22 * j[6]
    head_rx = 0.062 * j[7]
    head_ry = head_rx * u(1.05, 1.25)
    neck_gap = 0.035 * j[8]
    w = u(0.85, 1.15, 2)  # limb thickness (diameters)
    w_upper_arm, w_forearm, w_hand = 0.075 * w[0], 0.062 * w[0], 0.058 * w[0]
    w_thigh, w_knee, w_ankle = 0.105 * w[1], 0.082 * w[1], 0.065 * w[1]
    w_neck = 0.06 * w[0]

    # --- Pose in a body frame: pelvis at the origin, y pointing down, upright. ---
    pts: dict[str, tuple[float, float]] = {}
    pts["pelvis"] = (0.0, 0.0)
    pts["neck"] = (0.0, -torso_len)
    head_tilt = u(-15, 15) * _DEG
    d = neck_gap + head_ry
    pts["head"] = (d * math.sin(head_tilt), -torso_len - d * math.cos(head_tilt))
    for name, side in (("left", -1.0), ("right", 1.0)):
        sh = (side * shoulder_half, -torso_len)
        a1 = u(-60, 150) * _DEG  # arm: -60 (across the chest) .. 150 (raised above the head)
        a2 = a1 + (1 if rng.random() < 0.5 else -1) * u(0, ELBOW_BEND_MAX) * _DEG
        dx, dy = _limb_dir(side, a1)
        el = (sh[0] + upper_arm * dx, sh[1] + upper_arm * dy)
        dx, dy = _limb_dir(side, a2)
        wr = (el[0] + forearm * dx, el[1] + forearm * dy)
        hip = (side * hip_half, 0.0)
        l1 = u(-25, 45) * _DEG  # leg: inwards a little, outwards more
        l2 = l1 + (1 if rng.random() < 0.5 else -1) * u(0, 100) * _DEG  # knee bend
        dx, dy = _limb_dir(side, l1)
        kn = (hip[0] + thigh * dx, hip[1] + thigh * dy)
        dx, dy = _limb_dir(side, l2)
        an = (kn[0] + shin * dx, kn[1] + shin * dy)
        pts.update(
            {
                f"{name}_shoulder": sh,
                f"{name}_elbow": el,
                f"{name}_wrist": wr,
                f"{name}_hip": hip,
                f"{name}_knee": kn,
                f"{name}_ankle": an,
            }
        )
    nominal_height = neck_gap + 2 * head_ry + torso_len + thigh + shin + w_ankle / 2

    # Torso corners: a little outside and above the shoulders, outside and below the hips.
    ls, rs, lh, rh = (pts[k] for k in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
    top_out, top_up = 0.25 * w_upper_arm, 0.3 * w_upper_arm
    bottom_out, bottom_down = 0.35 * w_thigh, 0.15 * w_thigh
    torso = [
        (ls[0] - top_out, ls[1] - top_up),
        (rs[0] + top_out, rs[1] - top_up),
        (rh[0] + bottom_out, rh[1] + bottom_down),
        (lh[0] - bottom_out, lh[1] + bottom_down),
    ]

    # --- Global tilt about the pelvis. ---
    tilt = u(-15, 15) * _DEG
    ct, st = math.cos(tilt), math.sin(tilt)

    def rot(p: tuple[float, float]) -> tuple[float, float]:
        return ct * p[0] - st * p[1], st * p[0] + ct * p[1]

    pts = {k: rot(p) for k, p in pts.items()}
    torso = [rot(p) for p in torso]

    # --- Scale and position: nominal height 55-85% of the side, shrunk if the pose is wider or
    # taller than the image allows, then placed uniformly where it fits inside the margin. ---
    radius = {
        "head": max(head_rx, head_ry),
        "left_wrist": w_hand / 2,
        "right_wrist": w_hand / 2,
        "left_ankle": w_ankle / 2,
        "right_ankle": w_ankle / 2,
        "left_elbow": w_upper_arm / 2,
        "right_elbow": w_upper_arm / 2,
        "left_knee": w_thigh / 2,
        "right_knee": w_thigh / 2,
        "left_shoulder": w_upper_arm / 2,
        "right_shoulder": w_upper_arm / 2,
        "left_hip": w_thigh / 2,
        "right_hip": w_thigh / 2,
    }
    xs = [p[0] + s * radius.get(k, 0.0) for k, p in pts.items() for s in (-1, 1)]
    ys = [p[1] + s * radius.get(k, 0.0) for k, p in pts.items() for s in (-1, 1)]
    xs += [p[0] for p in torso]
    ys += [p[1] for p in torso]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    margin = max(1.5, 0.03 * size)
    room = size - 2 * margin
    scale = min(u(0.55, 0.85) * size / nominal_height, room / (x1 - x0), room / (y1 - y0))
    # max() guards against rounding when the pose exactly fills the room.
    lo_x, lo_y = margin - scale * x0, margin - scale * y0
    tx = u(lo_x, max(lo_x, size - margin - scale * x1))
    ty = u(lo_y, max(lo_y, size - margin - scale * y1))

    def place(p: tuple[float, float]) -> tuple[float, float]:
        return scale * p[0] + tx, scale * p[1] + ty

    joints = {k: place(p) for k, p in pts.items()}
    for k in joints:
        if k not in ("neck", "pelvis"):
            joints[k] = (_snap(joints[k][0]), _snap(joints[k][1]))
    for mid, (a, b) in (
        ("neck", ("left_shoulder", "right_shoulder")),
        ("pelvis", ("left_hip", "right_hip")),
    ):
        joints[mid] = ((joints[a][0] + joints[b][0]) / 2, (joints[a][1] + joints[b][1]) / 2)
    torso = [place(p) for p in torso]

    # --- Colours: each part group contrasts with the background; arms also with the torso. ---
    bg, bg_luma = _background(rng, size)
    palette = np.zeros((_N_PARTS, 3))
    cols = _colours(rng, _far_luma(rng, bg_luma, 5), (0.3, 1.0))
    palette[_TORSO] = cols[0]
    palette[_HEAD] = cols[1] if rng.random() < 0.6 else cols[0]
    arm = cols[2]
    for _ in range(8):
        if np.abs(arm - cols[0]).sum() > 0.45:
            break
        arm = _colours(rng, _far_luma(rng, bg_luma, 1), (0.3, 1.0))[0]
    palette[_UPPER_ARM] = palette[_FOREARM] = arm
    palette[_THIGH] = palette[_SHIN] = cols[3] if rng.random() < 0.6 else cols[0]
    if rng.random() < 0.3:  # gloves and boots
        palette[_FOREARM], palette[_SHIN] = cols[4], cols[4]

    texture = _texture(rng, size)
    textured = rng.random(_N_PARTS) < 0.7

    # --- Draw, back to front: legs, neck, torso, head, arms. ---
    s = scale
    canvas = _Canvas(size)
    for side in ("left", "right"):
        hip, kn = joints[f"{side}_hip"], joints[f"{side}_knee"]
        canvas.segment(hip, kn, s * w_thigh, s * w_knee, _THIGH)
    for side in ("left", "right"):
        kn, an = (joints[f"{side}_{k}"] for k in ("knee", "ankle"))
        canvas.segment(kn, an, s * w_knee, s * w_ankle, _SHIN)
    canvas.segment(joints["neck"], joints["head"], s * w_neck, s * w_neck, _HEAD)
    canvas.polygon(torso, _TORSO)
    canvas.ellipse(joints["head"], s * head_rx, s * head_ry, _HEAD)
    for side in ("left", "right"):
        sh, el = joints[f"{side}_shoulder"], joints[f"{side}_elbow"]
        canvas.segment(sh, el, s * w_upper_arm, s * w_upper_arm, _UPPER_ARM)
    for side in ("left", "right"):
        el, wr = joints[f"{side}_elbow"], joints[f"{side}_wrist"]
        canvas.segment(el, wr, s * w_forearm, s * w_hand, _FOREARM)

    # --- Composite: the box-filtered colours are premultiplied by coverage (background id 0 is
    # black), so over-compositing needs no division. ---
    body = canvas.downsample_rgb(np.round(palette * 255).astype(np.uint8)).astype(np.float32)
    alpha = canvas.downsample([0] + [255] * (_N_PARTS - 1) + [0] * (256 - _N_PARTS))
    alpha = alpha.astype(np.float32)[..., None] / 255.0
    img = bg * (1.0 - alpha) + body / 255.0
    if texture is not None:
        table = [255 if i < _N_PARTS and i > 0 and textured[i] else 0 for i in range(256)]
        weight = canvas.downsample(table).astype(np.float32) / 255.0
        img = img + (rng.uniform(0.05, 0.1) * texture * weight)[..., None]
    img = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)

    out = np.array([joints[k] for k in JOINT_NAMES], dtype=np.float32)
    return img, out


def generate(n: int, size: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n images (n, size, size, 3) uint8 and joints (n, 15, 2) float32; same seed -> identical
    output."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size, 3), np.uint8)
    joints = np.empty((n, len(JOINT_NAMES), 2), np.float32)
    for i in range(n):
        images[i], joints[i] = render_figure(rng, size)
    return images, joints


def _coco_bbox(kp: np.ndarray, size: int) -> list[float]:
    """[x, y, w, h] around the joints, grown by 10% of its extent on every side, clipped."""
    lo, hi = kp.min(axis=0).astype(np.float64), kp.max(axis=0).astype(np.float64)
    pad = 0.1 * (hi - lo)
    lo = np.maximum(lo - pad, 0.0)
    hi = np.minimum(hi + pad, float(size))
    return [round(float(v), 3) for v in (lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1])]


def write_dataset(out_dir: str | Path, n: int, size: int = 128, seed: int = 0) -> Path:
    """Write ``n`` images to out_dir/images/000000.png ... and COCO keypoints to
    out_dir/annotations.json; the same (size, seed) gives the same data as ``generate``.

    ``file_name`` is the bare file name (images live in out_dir/images); image and annotation
    ids are 1-based (image i is "{i-1:06d}.png"). Keypoints use this module's convention (pixel
    centres at +0.5), all with visibility 2. The category skeleton is 1-based, as in COCO.
    Returns out_dir as a Path.
    """
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)  # same stream as generate(), one image at a time
    images, annotations = [], []
    for i in range(n):
        img, kp = render_figure(rng, size)
        name = f"{i:06d}.png"
        Image.fromarray(img).save(out / "images" / name)
        images.append({"id": i + 1, "file_name": name, "width": size, "height": size})
        flat: list[float] = []
        for x, y in kp.tolist():
            flat += [x, y, 2]
        bbox = _coco_bbox(kp, size)
        annotations.append(
            {
                "id": i + 1,
                "image_id": i + 1,
                "category_id": 1,
                "keypoints": flat,
                "num_keypoints": len(JOINT_NAMES),
                "bbox": bbox,
                "area": round(bbox[2] * bbox[3], 3),
                "iscrowd": 0,
            }
        )
    coco = {
        "info": {"description": "keylink synthetic figures", "size": size, "seed": seed},
        "images": images,
        "annotations": annotations,
        "categories": [
            {
                "id": 1,
                "name": "figure",
                "supercategory": "figure",
                "keypoints": list(JOINT_NAMES),
                "skeleton": [[a + 1, b + 1] for a, b in SKELETON],
            }
        ],
    }
    (out / "annotations.json").write_text(json.dumps(coco))
    return out
