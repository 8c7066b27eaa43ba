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

from keylink.config import FIGURE_SETTINGS, PRESETS, RunConfig, preset
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
        model, train_cfg = preset(name, args.keypoints)
        if args.figure_settings:
            for key, value in FIGURE_SETTINGS.items():
                setattr(model if hasattr(model, key) else train_cfg, key, value)
            train_cfg.flip_symmetry_at = 0.0  # the demo's full step, with all three detector passes
        if args.batch_size:
            train_cfg.batch_size = args.batch_size
        train_cfg.steps, train_cfg.device = args.steps, args.device
        train_cfg.checkpoint_every = train_cfg.sample_every = 10**9
        images, _ = generate(256, model.image_size, seed=0)
        cfg = RunConfig(images="synthetic", model=model, train=train_cfg)
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
                    "image_size": model.image_size,
                    "batch_size": train_cfg.batch_size,
                    "steps": result.steps,
                    "images_per_second": round(result.images_per_second, 2),
                    "ms_per_step": round(1000 * result.seconds / max(result.steps, 1), 1),
                }
            )
        )


if __name__ == "__main__":
    main()
