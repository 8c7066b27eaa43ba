"""Benchmark on real labelled data: train without labels, then measure with the linear-fit
protocol, the few-shot naming curve and a supervised regressor trained on the same labels.

    python benchmarks/landmarks.py mtfl --minutes 60 --out /tmp/bench-mtfl
    python benchmarks/landmarks.py dlc --minutes 20 --out /tmp/bench-dlc

mtfl: ../shared/data/mtfl-train, the standard split (fit on the first 8,000 annotation ids, report
on the last 2,000), NME normalised by the inter-ocular distance. dlc: ../shared/data/dlc-openfield
(116 frames, 4 keypoints), pixel error and PCK at 5 and 10 px. Results go to OUT/results.json;
paste the printed Markdown into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from keylink.api import make_config
from keylink.config import RunConfig, apply_overrides
from keylink.data.dataset import load_folder
from keylink.data.images import Resize
from keylink.engine import latest_checkpoint, load_run, train
from keylink.evaluate import (
    fit_linear,
    normalising_distance,
    pixel_pck,
    score,
    to_pixels,
    to_relative,
)
from keylink.inference import annotate_with
from keylink.io.groundtruth import GroundTruth, read_ground_truth
from keylink.methods.autolink import AutoLink
from keylink.naming import fit_naming

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def load_dataset(name: str) -> tuple[GroundTruth, np.ndarray, np.ndarray, Path]:
    """Ground truth, fit indices, test indices, images folder."""
    if name == "mtfl":
        gt = read_ground_truth(DATA / "mtfl-train" / "annotations.json")
        n = len(gt)
        return gt, np.arange(n - 2000), np.arange(n - 2000, n), DATA / "mtfl-train" / "images"
    if name == "dlc":
        gt = read_ground_truth(DATA / "dlc-openfield")
        order = np.random.default_rng(0).permutation(len(gt))
        folder = gt.image_paths[0].parent
        return gt, order[:58], order[58:], folder
    raise SystemExit(f"unknown dataset {name}")


def keypoints_of(model, config: RunConfig, gt: GroundTruth):
    model.eval()
    result = annotate_with(model, config, gt.image_paths, overlays=False, progress=False)
    model.train()
    return to_relative(result.keypoints, result.sizes), result.sizes


def protocol_nme(kp_rel, sizes, gt, fit, test, distance) -> tuple[dict, dict]:
    """Linear fit on ``fit``, scores on ``test``; and the mean-shape baseline."""
    truth_rel = to_relative(gt.points, sizes)
    test_sizes = [sizes[i] for i in test]
    reg = fit_linear(kp_rel[fit], truth_rel[fit], ridge=1e-4)
    pred = to_pixels(reg.predict(kp_rel[test]), test_sizes)
    base = to_pixels(
        np.broadcast_to(np.nanmean(truth_rel[fit], axis=0), truth_rel[test].shape), test_sizes
    )
    truth = gt.points[test]
    return (
        score(pred, truth, gt.names, distance[test]).to_dict()
        | {"pck_px": pixel_pck(pred, truth, (5, 10))},
        score(base, truth, gt.names, distance[test]).to_dict()
        | {"pck_px": pixel_pck(base, truth, (5, 10))},
    )


def few_shot(kp_rel, sizes, gt, fit, test, distance, n: int, repeats: int) -> dict:
    """Name the keypoints from n labelled images (ridge by cross-validation), score on test."""
    truth_rel = to_relative(gt.points, sizes)
    test_sizes = [sizes[i] for i in test]
    results = []
    for r in range(repeats):
        pick = np.random.default_rng(r).choice(fit, size=n, replace=False)
        naming = fit_naming(
            kp_rel[pick],
            truth_rel[pick],
            [sizes[i] for i in pick],
            gt.names,
            [],
            distance[pick],
            "",
            "",
        )
        pred = to_pixels(naming.predict(kp_rel[test]), test_sizes)
        s = score(pred, gt.points[test], gt.names, distance[test])
        results.append((s.nme, s.error_px, pixel_pck(pred, gt.points[test], (5, 10))))
    return {
        "n": n,
        "nme_percent": float(np.mean([r[0] for r in results])),
        "error_px": float(np.mean([r[1] for r in results])),
        "pck_px": {k: float(np.mean([r[2][k] for r in results])) for k in results[0][2]},
        "repeats": repeats,
    }


def supervised(
    gt, images, sizes, resize, fit, test, distance, n: int, seconds: float, repeats: int
) -> dict:
    """The usual alternative: a small CNN regressor (keylink's detector with one heatmap per
    landmark and a soft-argmax) trained directly on the n labelled images for ``seconds``."""
    from keylink.geometry import pixels_to_normalised, soft_argmax
    from keylink.models import create_model

    size = images.shape[1]
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    model_points = np.stack([resize.to_model(p, *sizes[i]) for i, p in enumerate(gt.points)])
    truth = torch.from_numpy(model_points).float()
    nmes, pxs, pcks = [], [], []
    for r in range(repeats):
        torch.manual_seed(r)
        pick = np.random.default_rng(r).choice(fit, size=n, replace=False)
        net = create_model("detector_cpu", 3, len(gt.names))
        opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-3)
        target = pixels_to_normalised(truth[pick], size, size)
        start, step = time.time(), 0
        while time.time() - start < seconds:
            idx = torch.randint(len(pick), (min(32, len(pick)),))
            x = x_all[pick][idx]
            # Mild photometric jitter: the only augmentation that keeps labels valid as they are.
            x = (x * (0.8 + 0.4 * torch.rand(len(x), 1, 1, 1))).clamp(0, 1)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = net(x * 2 - 1)
            kp, _ = soft_argmax(logits.float())
            loss = (kp - target[idx]).abs().nan_to_num().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        net.eval()
        with torch.no_grad():
            kp, _ = soft_argmax(net(x_all[test] * 2 - 1).float())
        model_px = ((kp + 1) / 2 * size).numpy()
        pred = np.stack(
            [resize.to_original(p, *sizes[i]) for p, i in zip(model_px, test, strict=True)]
        )
        s = score(pred, gt.points[test], gt.names, distance[test])
        nmes.append(s.nme)
        pxs.append(s.error_px)
        pcks.append(pixel_pck(pred, gt.points[test], (5, 10)))
    return {
        "n": n,
        "nme_percent": float(np.mean(nmes)),
        "error_px": float(np.mean(pxs)),
        "pck_px": {k: float(np.mean([p[k] for p in pcks])) for k in pcks[0]},
        "seconds": seconds,
        "repeats": repeats,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("dataset", choices=("mtfl", "dlc"))
    p.add_argument("--minutes", type=float, default=60.0, help="unsupervised training budget")
    p.add_argument("--eval-every", type=float, default=10.0, help="minutes between NME points")
    p.add_argument("--keypoints", type=int, default=16)
    p.add_argument("--shots", default=None, help="comma-separated n for the few-shot curve")
    p.add_argument("--supervised-seconds", type=float, default=300.0, help="0: skip that baseline")
    p.add_argument("--supervised-repeats", type=int, default=3, help="draws of n images, at most")
    p.add_argument("--set", action="append", default=[], help="config override field=value")
    p.add_argument("--out", required=True)
    args = p.parse_args()

    gt, fit, test, folder = load_dataset(args.dataset)
    config = make_config(folder, args.keypoints, "cpu", minutes=args.minutes, steps=10**7)
    apply_overrides(config, args.set)
    config.validate()
    resize = Resize(config.model.image_size, config.model.resize)
    data = load_folder(folder, resize, progress=True)
    distance, norm_text = normalising_distance(gt.points, gt.names)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    curve = []
    run_dir = out / "run"
    resume = (run_dir / "checkpoints" / "latest").exists()
    # A resumed run (a longer --minutes on the same OUT) keeps counting its training minutes.
    already = 0.0
    if resume:
        state = torch.load(latest_checkpoint(run_dir) / "state.pt", weights_only=True)
        already = float(state["elapsed"])
    every = args.eval_every * 60
    next_eval = [(already // every + 1) * every]
    t0 = time.time() - already

    def on_sample(model, step, *_):
        elapsed = time.time() - t0
        if elapsed < next_eval[0]:
            return
        next_eval[0] += args.eval_every * 60
        kp_rel, sizes = keypoints_of(model, config, gt)
        ours, _ = protocol_nme(kp_rel, sizes, gt, fit, test, distance)
        curve.append({"minutes": round(elapsed / 60, 1), "step": step, **ours})
        print(f"{elapsed / 60:.1f} min, step {step}: NME {ours['nme_percent']:.2f}%", flush=True)

    config.train.sample_every = 25
    result = train(config, data, run_dir, progress=False, on_sample=on_sample, resume=resume)
    config, model = load_run(run_dir)
    kp_rel, sizes = keypoints_of(model, config, gt)
    ours, base = protocol_nme(kp_rel, sizes, gt, fit, test, distance)
    # What training adds: the same protocol on an untrained detector's keypoints.
    torch.manual_seed(config.train.seed)
    kp_untrained, _ = keypoints_of(AutoLink(config.model), config, gt)
    untrained, _ = protocol_nme(kp_untrained, sizes, gt, fit, test, distance)
    print(
        f"NME {ours['nme_percent']:.2f}%, untrained detector {untrained['nme_percent']:.2f}%, "
        f"mean shape {base['nme_percent']:.2f}%",
        flush=True,
    )
    curve.append({"minutes": round(result.seconds / 60, 1), "step": result.steps, **ours})

    shots = (
        [int(s) for s in args.shots.split(",")]
        if args.shots
        else ([5, 10, 50, 200, len(fit)] if args.dataset == "mtfl" else [10, 50])
    )
    # The supervised regressor trains on the same resized images, in ground-truth order.
    index_of = {p.resolve(): i for i, p in enumerate(data.paths)}
    order = np.array([index_of[p.resolve()] for p in gt.image_paths])
    images = data.images.numpy()[order]
    naming_curve, supervised_curve = [], []
    for n in shots:
        repeats = 5 if n <= 10 else (3 if n <= 200 else 1)
        naming_curve.append(few_shot(kp_rel, sizes, gt, fit, test, distance, n, repeats))
        print("few-shot", naming_curve[-1], flush=True)
        if args.supervised_seconds > 0 and (n <= 200 or args.dataset == "dlc"):
            supervised_curve.append(
                supervised(
                    gt,
                    images,
                    sizes,
                    resize,
                    fit,
                    test,
                    distance,
                    n,
                    args.supervised_seconds,
                    min(repeats, args.supervised_repeats),
                )
            )
            print("supervised", supervised_curve[-1], flush=True)
    report = {
        "dataset": args.dataset,
        "normalised_by": norm_text,
        "config": json.loads(config.to_json()),
        "training": {
            "steps": result.steps,
            "minutes": round(result.seconds / 60, 1),
            "images_per_second": round(result.images_per_second, 1),
        },
        "linear_fit": ours,
        "mean_shape_baseline": base,
        "untrained_detector": untrained,
        "nme_curve": curve,
        "few_shot": naming_curve,
        "supervised": supervised_curve,
        "date": time.strftime("%Y-%m-%d"),
    }
    (out / "results.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("linear_fit", "mean_shape_baseline")}, indent=1))


if __name__ == "__main__":
    main()
