"""Train AutoLink variants on the synthetic figures and report keypoint error after a linear fit.

python benchmarks/synthetic_sweep.py --steps 600 --set loss=l1grad --set model.thickness=4e-3
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from keylink.config import RunConfig, apply_overrides, preset
from keylink.data.dataset import from_arrays
from keylink.data.synthetic import JOINT_NAMES, SKELETON, generate
from keylink.engine import train
from keylink.evaluate import fit_linear, skeleton_agreement
from keylink.methods.autolink import AutoLink
from keylink.report import draw_keypoints, image_grid, save_png


def keypoints_of(model: AutoLink, images: np.ndarray, size: int) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), 128):
            x = torch.from_numpy(images[i : i + 128]).permute(0, 3, 1, 2).float() / 255
            out.append(model.detect(x).keypoints.numpy())
    model.train()
    return (np.concatenate(out) + 1) / 2 * size  # pixels


ARMS = [i for i, n in enumerate(JOINT_NAMES) if "elbow" in n or "wrist" in n]
LEGS = [i for i, n in enumerate(JOINT_NAMES) if "knee" in n or "ankle" in n]


def fit_errors(kp: np.ndarray, joints: np.ndarray) -> dict[str, float]:
    """Held-out joint error (px) after a linear fit with intercept: all joints, arms, legs."""
    reg = fit_linear(kp[:500], joints[:500], intercept=True)
    dist = np.linalg.norm(reg.predict(kp[500:]) - joints[500:], axis=-1)
    return {
        "all": float(dist.mean()),
        "arms": float(dist[:, ARMS].mean()),
        "legs": float(dist[:, LEGS].mean()),
    }


def gen(n, size, seed):
    from PIL import Image

    x, j = generate(n, 128, seed)
    f = 128 // size
    x = np.stack([np.asarray(Image.fromarray(i).resize((size, size), Image.BOX)) for i in x])
    return x, j / f


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--keypoints", type=int, default=16)
    p.add_argument("--train-images", type=int, default=4000)
    p.add_argument("--set", action="append", default=[], help="field=value (model.x or train.x)")
    p.add_argument("--out", default="/tmp/sweep")
    p.add_argument("--eval-every", type=int, default=0)
    args = p.parse_args()
    model_cfg, train_cfg = preset("cpu", args.keypoints)
    cfg = RunConfig(images="synthetic", model=model_cfg, train=train_cfg)
    apply_overrides(cfg, args.set)
    cfg.train.steps = args.steps
    size = cfg.model.image_size
    images, _ = gen(args.train_images, size, seed=1)
    eval_images, joints = gen(1000, size, seed=12345)
    data = from_arrays(images)
    errs = {}

    def on_sample(model, step, *_):
        kp = keypoints_of(model, eval_images, size)
        errs[step] = fit_errors(kp, joints)
        skeleton = [(i, j) for i, j, _ in model.skeleton()]
        agreement = skeleton_agreement(kp, skeleton, joints, SKELETON, radius=4.0)
        errs[step]["skeleton"] = agreement.to_dict()
        e = errs[step]
        print(
            f"step {step}: error {e['all']:.2f} px, arms {e['arms']:.2f}, legs {e['legs']:.2f}; "
            f"{agreement.edges} edges, {agreement.on_bones} on bones, "
            f"{len(e['skeleton']['joints_followed'])} joints followed",
            flush=True,
        )
        tiles = [
            draw_keypoints(eval_images[i], kp[i], skeleton=skeleton, scale=2) for i in range(12)
        ]
        save_png(f"{args.out}-step{step}.png", image_grid(tiles, columns=6))

    torch.manual_seed(0)
    init = AutoLink(cfg.model)
    kp0 = keypoints_of(init, eval_images, size)
    errs[0] = fit_errors(kp0, joints)
    print(f"init error {errs[0]}")
    cfg.train.sample_every = args.eval_every or max(1, args.steps // 4)
    cfg.train.checkpoint_every = 10**9
    import shutil

    shutil.rmtree(args.out, ignore_errors=True)
    t = time.time()
    res = train(cfg, data, args.out, progress=False, on_sample=on_sample)
    print(
        json.dumps(
            {
                "set": args.set,
                "errors": errs,
                "img_s": res.images_per_second,
                "minutes": (time.time() - t) / 60,
            }
        )
    )


if __name__ == "__main__":
    main()
