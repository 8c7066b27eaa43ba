"""The skeleton of finished demo runs with and without the rule that leaves out dots.

An edge between keypoints that sit on one spot draws a dot, not a link; runs trained since
session 7 track each edge's mean length and leave such edges out. For runs from before (lengths
unknown) this measures the lengths on the demo's test figures and compares the two skeletons
against the true bones (edges, on bones / along bones, as ``keylink demo`` counts them).

python benchmarks/skeleton_dot_rule.py keylink-demo [more demo folders]
"""

from __future__ import annotations

import argparse

import torch

from keylink import api
from keylink.data.synthetic import SKELETON
from keylink.demo import IMAGE_SIZE, JOINT_RADIUS, LIMB_TOLERANCE
from keylink.evaluate import skeleton_agreement
from keylink.io.coco import read_coco_keypoints


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("demos", nargs="+", help="keylink demo output folders")
    args = p.parse_args()
    for demo in args.demos:
        _, model = api.load(f"{demo}/run")
        _, found, _ = read_coco_keypoints(f"{demo}/annotations/annotations.json")
        _, truth, _ = read_coco_keypoints(f"{demo}/data/test/annotations.json")
        found, truth = found[..., :2], truth[..., :2]
        size = IMAGE_SIZE  # the demo's square images: pixels to [-1, 1] is exact
        rules = {"without": [(i, j) for i, j, _ in model.skeleton()]}
        model.graph.mean_length.fill_(float("nan"))
        model.graph.track_lengths(torch.as_tensor(found * 2 / size - 1, dtype=torch.float32))
        rules["with"] = [(i, j) for i, j, _ in model.skeleton()]
        for rule, edges in rules.items():
            a = skeleton_agreement(found, edges, truth, SKELETON, JOINT_RADIUS, LIMB_TOLERANCE)
            print(
                f"{demo} {rule} the dot rule: {a.edges} edges, {a.on_bones} on bones, "
                f"{a.along_bones} along bones"
            )


if __name__ == "__main__":
    main()
