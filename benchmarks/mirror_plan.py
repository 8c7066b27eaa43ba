"""What mirror recruitment would do on a trained demo run: each keypoint's nearest true joint, its
mirror partner (the keypoint where the detector, run on flipped figures, puts its mirror part),
its strongest edge, and the plan (idle keypoint -> keypoint whose mirror part it would take).

python benchmarks/mirror_plan.py DEMO_OUT [--images 64] [--seed 123]
"""

from __future__ import annotations

import argparse

import torch

from keylink import api
from keylink.data.synthetic import JOINT_NAMES, generate
from keylink.geometry import flip_points, pixels_to_normalised
from keylink.methods.mirror import (
    PARTNER_RADIUS,
    mirror_partners,
    recruit_plan,
    strongest_edges,
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", help="a keylink demo output folder (with run/)")
    p.add_argument("--images", type=int, default=64, help="fresh figures to look at")
    p.add_argument("--seed", type=int, default=123)
    args = p.parse_args()
    config, model = api.load(f"{args.out}/run")
    model.eval()
    size = config.model.image_size
    images, joints = generate(args.images, size, seed=args.seed)
    x = torch.tensor(images).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        kp = model.detect(x).keypoints
        mirrored = flip_points(model.detect(x.flip(-1)).keypoints)
    px = size / 2  # pixels per normalised unit
    truth = pixels_to_normalised(torch.tensor(joints), size, size)
    to_joint = (kp[:, :, None] - truth[:, None]).norm(dim=-1).mean(0)
    to_mirror = (mirrored[:, :, None] - kp[:, None]).norm(dim=-1).mean(0).min(1).values
    partners = mirror_partners(kp, mirrored, PARTNER_RADIUS)
    graph = model.graph
    strongest = strongest_edges(graph.drawn_weights().detach(), graph.pairs, kp.shape[1])
    for k in range(kp.shape[1]):
        j = int(to_joint[k].argmin())
        print(
            f"{k:2d} near {JOINT_NAMES[j]} ({float(to_joint[k, j]) * px:.1f} px), mirror partner "
            f"{partners[k]} ({float(to_mirror[k]) * px:.1f} px), strongest edge "
            f"{float(strongest[k]):.3f}"
        )
    print("plan (idle keypoint -> keypoint whose mirror part it takes):", end=" ")
    print(recruit_plan(partners, strongest))


if __name__ == "__main__":
    main()
