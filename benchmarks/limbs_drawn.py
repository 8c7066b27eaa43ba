"""How much of each limb a finished demo run's skeleton draws (``limbs_drawn`` in the demo's
``metrics.json`` since session 15), for demo folders written before the demo measured it, and how
much a skeleton of the N strongest learned edges would draw (``--edges``; session 18), with its
edges on and along the true bones.

python benchmarks/limbs_drawn.py keylink-demo [more demo folders] [--edges 15 20]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from keylink import api
from keylink.data.synthetic import LIMBS, SKELETON
from keylink.demo import JOINT_RADIUS, LIMB_DRAWN_TOLERANCE, LIMB_TOLERANCE
from keylink.evaluate import limb_coverage, skeleton_agreement
from keylink.io.coco import read_coco_keypoints


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("demos", nargs="+", help="keylink demo output folders")
    p.add_argument("--edges", type=int, nargs="*", default=[], help="skeleton sizes to compare")
    args = p.parse_args()
    for demo in map(Path, args.demos):
        _, found, _ = read_coco_keypoints(demo / "annotations" / "annotations.json")
        _, truth, _ = read_coco_keypoints(demo / "data" / "test" / "annotations.json")
        found, truth = found[..., :2], truth[..., :2]
        metrics = json.loads((demo / "metrics.json").read_text())
        skeletons = {"the run's": [(i - 1, j - 1) for i, j in metrics["skeleton"]]}
        if args.edges:
            _, model = api.load(demo / "run")
            for n in args.edges:
                skeletons[f"{n} strongest"] = [(i, j) for i, j, _ in model.skeleton(max_edges=n)]
        print(f"{demo}: {metrics['training_steps']} steps, {metrics['error_px']} px")
        for name, skeleton in skeletons.items():
            shares = limb_coverage(
                found, skeleton, truth, list(LIMBS.values()), LIMB_DRAWN_TOLERANCE
            )
            bones = skeleton_agreement(
                found, skeleton, truth, SKELETON, JOINT_RADIUS, LIMB_TOLERANCE
            )
            drawn = ", ".join(f"{limb} {v:.2f}" for limb, v in zip(LIMBS, shares, strict=True))
            print(
                f"  {name} ({len(skeleton)} edges): {drawn}; "
                f"{bones.on_bones} on / {bones.along_bones} along bones"
            )


if __name__ == "__main__":
    main()
