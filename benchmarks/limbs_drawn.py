"""How much of each limb a finished demo run's skeleton draws (``limbs_drawn`` in the demo's
``metrics.json`` since session 15), for demo folders written before the demo measured it.

python benchmarks/limbs_drawn.py keylink-demo [more demo folders]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from keylink.data.synthetic import LIMBS
from keylink.demo import LIMB_DRAWN_TOLERANCE
from keylink.evaluate import limb_coverage
from keylink.io.coco import read_coco_keypoints


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("demos", nargs="+", help="keylink demo output folders")
    for demo in map(Path, p.parse_args().demos):
        _, found, _ = read_coco_keypoints(demo / "annotations" / "annotations.json")
        _, truth, _ = read_coco_keypoints(demo / "data" / "test" / "annotations.json")
        metrics = json.loads((demo / "metrics.json").read_text())
        skeleton = [(i - 1, j - 1) for i, j in metrics["skeleton"]]
        shares = limb_coverage(
            found[..., :2], skeleton, truth[..., :2], list(LIMBS.values()), LIMB_DRAWN_TOLERANCE
        )
        drawn = ", ".join(f"{name} {v:.2f}" for name, v in zip(LIMBS, shares, strict=True))
        print(f"{demo}: {metrics['training_steps']} steps, {metrics['error_px']} px; {drawn}")


if __name__ == "__main__":
    main()
