"""Training speed (images per second) of each preset on this machine, on synthetic figures.

python benchmarks/preset_speed.py --steps 20
python benchmarks/preset_speed.py --presets cpu --figure-settings --batch-size 16   # the demo's
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile

import torch

from keylink.api import make_config
from keylink.config import FIGURE_SETTINGS, PRESETS
from keylink.data.dataset import from_arrays
from keylink.data.synthetic import generate
from keylink.engine import select_device, train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=20, help="timed steps per preset")
    p.add_argument("--presets", default=",".join(PRESETS))
    p.add_argument("--keypoints", type=int, default=16)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--figure-settings",
        action="store_true",
        help="train as keylink demo does (FIGURE_SETTINGS)",
    )
    p.add_argument("--batch-size", type=int, help="instead of the preset's (or the demo's)")
    args = p.parse_args()
    device = select_device(args.device)
    for name in args.presets.split(","):
        settings = dict(FIGURE_SETTINGS) if args.figure_settings else {}
        if args.figure_settings:
            settings["flip_symmetry_at"] = 0.0  # the demo's full step, all three detector passes
        if args.batch_size:
            settings["batch_size"] = args.batch_size
        cfg = make_config(
            "synthetic", args.keypoints, name, steps=args.steps, device=args.device, **settings
        )
        cfg.train.checkpoint_every = cfg.train.sample_every = 10**9
        images, _ = generate(256, cfg.model.image_size, seed=0)
        with tempfile.TemporaryDirectory() as tmp:
            result = train(cfg, from_arrays(images), tmp, progress=False)
        print(
            json.dumps(
                {
                    "preset": name,
                    "figure_settings": args.figure_settings,
                    "device": str(device),
                    "cpu": platform.processor() or platform.machine(),
                    "threads": torch.get_num_threads(),
                    "image_size": cfg.model.image_size,
                    "batch_size": cfg.train.batch_size,
                    "steps": result.steps,
                    "images_per_second": round(result.images_per_second, 2),
                    "ms_per_step": round(1000 * result.seconds / max(result.steps, 1), 1),
                }
            )
        )


if __name__ == "__main__":
    main()
