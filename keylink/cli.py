"""``keylink`` command line: a thin layer over :mod:`keylink.api`."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from keylink.config import DEMO_MINUTES, DEMO_STEPS, FIGURE_SETTINGS, PRESETS, ConfigError, as_flags
from keylink.data.images import ImageInputError, ImageSkippedWarning
from keylink.engine import RunError
from keylink.io.groundtruth import GroundTruthError
from keylink.losses import LOSSES, SEPARATION_KERNELS
from keylink.models import CLASSIFIERS

DESCRIPTION = """\
keylink annotates keypoints automatically.

  keylink train IMAGES_DIR --keypoints K --out RUN_DIR   learn K keypoints and a skeleton
  keylink train IMAGES_DIR --method weak --labels LABELS.csv --label-column C --out RUN_DIR
                                                         keypoints from class labels
  keylink annotate RUN_DIR IMAGES_DIR --out OUT          write COCO keypoints and overlays
  keylink evaluate RUN_DIR --fit GT --test GT            measure against labelled landmarks
  keylink name RUN_DIR --labels GT                       name keypoints from a few labelled images
  keylink demo                                           try it all on synthetic figures

Run 'keylink COMMAND --help' for the options of a command."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keylink", description=DESCRIPTION, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"keylink {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    t = sub.add_parser(
        "train",
        help="learn keypoints and a skeleton from a folder of unlabelled images",
        description=(
            "Learn K keypoints and a skeleton from unlabelled images of one object category "
            "(self-supervised, after AutoLink). Reads jpg/png/bmp/tif/webp of any size; "
            "unreadable files are skipped with a warning. The run folder gets config.json, "
            "metrics.jsonl, samples/ pictures and checkpoints/ (safetensors). "
            "--method weak: keypoints from class labels instead (after Mo Shan's weakly "
            "supervised keypoint detection): trains a classifier on --labels LABELS.csv "
            "(--label-column names the class column; the image column is found by itself or "
            "named with --image-column; image paths are relative to IMAGES_DIR) or on one "
            "sub-folder per class, and logs its held-out accuracy; 'keylink annotate' then "
            "finds the image parts it relies on. --keypoints, --preset, --loss, "
            "--thickness, --equivariance and --warp-elastic do not apply to it."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    t.add_argument("images", metavar="IMAGES_DIR", help="folder of images (searched recursively)")
    t.add_argument("--out", "-o", required=True, metavar="RUN_DIR", help="run folder to write")
    t.add_argument("--keypoints", "-k", type=_positive_int, default=16, help="number of keypoints")
    t.add_argument(
        "--preset",
        choices=PRESETS,
        help="'paper': the paper's settings (128 px, large nets, for a GPU); 'cpu': small and "
        "fast on a CPU. Default: paper when training on a CUDA GPU, cpu otherwise",
    )
    t.add_argument("--steps", type=_positive_int, help="training steps (default: the preset's)")
    t.add_argument("--minutes", type=_positive_float, help="stop after this much training time")
    t.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR")
    t.add_argument(
        "--method",
        choices=("autolink", "weak"),
        default="autolink",
        help="autolink: self-supervised keypoints and skeleton; weak: keypoints from class labels",
    )
    t.add_argument("--labels", metavar="LABELS.csv", help="weak: CSV of image and class columns")
    t.add_argument("--label-column", metavar="COLUMN", help="weak: the CSV column of the classes")
    t.add_argument(
        "--image-column", metavar="COLUMN", help="weak: the CSV column of the images (detected)"
    )
    t.add_argument(
        "--classifier",
        choices=CLASSIFIERS,
        help="weak: classifier architecture (default classifier_vgg, small, from scratch; vgg16 "
        "for --weights in torchvision's layout)",
    )
    t.add_argument("--weights", metavar="FILE", help="weak: classifier weights to start from")
    t.add_argument("--seed", type=int, help="random seed (a CPU run is repeatable)")
    t.add_argument("--batch-size", type=_positive_int, help="images per step")
    t.add_argument("--lr", type=_positive_float, help="learning rate")
    t.add_argument("--image-size", type=_positive_int, help="model input side in pixels")
    t.add_argument("--resize", choices=("letterbox", "squash"), help="how images become square")
    t.add_argument(
        "--loss",
        choices=list(LOSSES),
        help="reconstruction loss: " + "; ".join(f"{k}: {v}" for k, v in LOSSES.items()),
    )
    t.add_argument("--vgg-weights", metavar="FILE", help="VGG16 ImageNet weights for --loss vgg")
    t.add_argument("--thickness", type=_positive_float, help="edge thickness (normalised units)")
    t.add_argument(
        "--equivariance",
        type=_non_negative_float,
        help="weight of the term that makes keypoints follow a random warp of the image (cpu "
        "preset 30: best on faces; 10 for thin articulated figures, 1 with --warp-elastic 0 "
        "for a small animal in a large frame, see BENCHMARKS.md; 0: off)",
    )
    t.add_argument(
        "--warp-elastic",
        type=_non_negative_float,
        help="how much that warp bends (normalised units; cpu preset 0.05; 0: rigid)",
    )
    t.add_argument(
        "--edge-saturate",
        action=argparse.BooleanOptionalAction,
        help="edge weights capped at 1 (tanh) instead of unbounded (cpu preset: capped)",
    )
    t.add_argument(
        "--edge-normalize",
        action=argparse.BooleanOptionalAction,
        help="draw the edges relative to the strongest, whose weight counts as 1, so the edge "
        "map stays visible to a bf16 decoder as the weights shrink (default: off, as in the "
        "paper)",
    )
    t.add_argument(
        "--edge-lr",
        type=_positive_float,
        help="learning rate of the edge weights (default: --lr). For articulated figures, "
        f"{as_flags(FIGURE_SETTINGS)} put keypoints on the limbs and edges along them (what "
        "keylink demo uses; BENCHMARKS.md)",
    )
    t.add_argument(
        "--edge-length-decay",
        type=_non_negative_float,
        help="shrink each edge weight by its length every step, so long edges must earn their "
        "place more than short ones (0: off, the paper's; default 0)",
    )
    t.add_argument(
        "--separation-sigma",
        type=_positive_float,
        help="reach of the term that keeps keypoints apart (normalised units, image side 2; "
        "default 0.1): wider sends keypoints out to thin parts",
    )
    t.add_argument(
        "--separation-kernel",
        choices=SEPARATION_KERNELS,
        help="shape of that term: gaussian (default) fades as keypoints meet, so a clump can "
        "stay; laplace pushes hardest where they meet",
    )
    t.add_argument(
        "--flip-symmetry",
        type=_non_negative_float,
        metavar="WEIGHT",
        help="for left-right symmetric objects (figures, faces, animals seen from above): the "
        "keypoints of a mirrored image must be the mirrored keypoints in any order, so a part "
        "found on one side (an elbow) is found on the other; costs one more detector pass "
        "while on (0 or unset: off; keylink demo uses 10)",
    )
    t.add_argument(
        "--flip-symmetry-at",
        type=_share,
        metavar="SHARE",
        help="switch --flip-symmetry on at this share of the run (of --steps or --minutes, "
        "whichever ends it; default 0.35): earlier, it holds keypoints that have not spread yet "
        "on the subject's midline",
    )
    t.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    t.add_argument("--precision", choices=("auto", "bf16", "fp32"), help="bf16 autocast or fp32")
    t.add_argument("--threads", type=_positive_int, help="CPU threads for PyTorch")
    t.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    a = sub.add_parser(
        "annotate",
        help="annotate images with a trained run (COCO keypoints + overlay pictures)",
        description=(
            "Detect the learned keypoints on every image of a folder and write "
            "OUT/annotations.json "
            "(COCO keypoints with per-keypoint confidences, an overall score and the learned "
            "skeleton) and OUT/overlays/*.png."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    a.add_argument("run", metavar="RUN_DIR", help="a run folder written by 'keylink train'")
    a.add_argument("images", metavar="IMAGES_DIR", help="folder of images to annotate")
    a.add_argument("--out", "-o", required=True, metavar="OUT", help="output folder")
    a.add_argument("--batch-size", type=_positive_int, default=64, help="images per batch")
    a.add_argument("--no-overlays", action="store_true", help="write only the COCO file")
    a.add_argument(
        "--discovered",
        action="store_true",
        help="for a named run, also write the discovered keypoints (annotations_discovered.json)",
    )
    a.add_argument(
        "--skeleton-edges",
        type=_non_negative_int,
        metavar="N",
        help="keep the N strongest learned edges as the skeleton (default: the run's, K - 1; "
        "more for subjects whose skeleton has cycles or a thick torso; 0: keypoints only)",
    )
    a.add_argument("--device", default="auto", help="cpu, cuda or cuda:N")
    a.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    e = sub.add_parser(
        "evaluate",
        help="measure a run against labelled landmarks (linear-fit protocol, NME, PCK)",
        description=(
            "The standard protocol of unsupervised keypoint papers: fit a linear regressor "
            "from the discovered keypoints to labelled landmarks on FIT_GT, apply it to "
            "TEST_GT, and report the normalised mean error (NME, percent of the inter-ocular "
            "distance when there are eye landmarks, else of the landmarks' bounding-box size), "
            "per landmark and overall, PCK and the error in pixels, beside a baseline that "
            "predicts the mean landmark positions. A weak (class-label) run needs only "
            "--test: it annotates those images and reports precision (share of keypoints "
            "within r of a landmark) and recall (share of landmarks with a keypoint within r) "
            "beside random points and Harris corners at the same count, and per predicted "
            "class which landmark its keypoints hit most. Ground truth: COCO keypoints JSON, a "
            "DeepLabCut project or its CollectedData CSV/H5, or a CSV (image, then name_x,name_y "
            "per landmark). Images are "
            "looked up in --images, beside the file, or in images/ beside it."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    e.add_argument("run", metavar="RUN_DIR", help="a run folder written by 'keylink train'")
    e.add_argument(
        "--fit", metavar="FIT_GT", help="labels to fit the regressor on (autolink runs only)"
    )
    e.add_argument("--test", required=True, metavar="TEST_GT", help="labels to report on")
    e.add_argument("--images", metavar="DIR", help="folder holding the labelled images")
    e.add_argument("--norm", metavar="NAME_A,NAME_B", help="normalise by this landmark distance")
    e.add_argument("--intercept", action="store_true", help="fit the regressor with an intercept")
    e.add_argument("--ridge", type=float, default=0.0, help="L2 penalty of the regressor")
    e.add_argument(
        "--pck", default="0.05,0.1,0.2", help="PCK thresholds (fractions of the norm distance)"
    )
    e.add_argument(
        "--radii",
        default="0.1,0.2",
        help="weak runs: match radii (fractions of the norm distance) for precision and recall",
    )
    e.add_argument("--json", metavar="METRICS.json", help="also write the metrics to this file")
    e.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    n = sub.add_parser(
        "name",
        help="name the discovered keypoints from a few labelled images",
        description=(
            "Few-shot naming: label your landmarks on a few images of the collection (5 to 10 "
            "already work, more help), and keylink fits a regularised map from its discovered "
            "keypoints to them, saves it in the run, and from then on 'keylink annotate' writes "
            "your named landmarks with a confidence each. Prints the cross-validated error on the "
            "labelled images (label more when it is too high) and the images it is least sure "
            "of, the next ones worth labelling. Labels: COCO keypoints JSON, a DeepLabCut "
            "project or CollectedData CSV/H5, or a CSV (image, then name_x,name_y per landmark)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    n.add_argument("run", metavar="RUN_DIR", help="a run folder written by 'keylink train'")
    n.add_argument("--labels", required=True, metavar="GT", help="your labelled images")
    n.add_argument("--images", metavar="DIR", help="folder holding the labelled images")
    n.add_argument("--ridge", type=float, help="L2 penalty (default: chosen by cross-validation)")
    n.add_argument("--suggest", type=int, default=10, help="how many images to suggest labelling")
    n.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    d = sub.add_parser(
        "demo",
        help="train and annotate on synthetic articulated figures (about 10 min on 2 CPU cores)",
        description=(
            "Generate images of a 2D articulated figure with known joints, learn keypoints and a "
            "skeleton on them with the cpu preset (with settings for articulated figures: "
            "slow, length-decayed edge weights drawn relative to the strongest, a keypoints-apart "
            "term that pushes hardest where keypoints meet, a weaker warp-following term, "
            f"left-right flip symmetry from {FIGURE_SETTINGS['flip_symmetry_at']:.0%} of the run, "
            f"batches of {FIGURE_SETTINGS['batch_size']}, "
            "and a skeleton of the 1.25 K strongest edges), "
            "annotate held-out images, and write pictures of the discovered keypoints beside the "
            "true skeleton plus the keypoint error after a linear fit."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d.add_argument("--out", "-o", default="keylink-demo", help="output folder")
    d.add_argument("--keypoints", "-k", type=_positive_int, default=16, help="keypoints to learn")
    d.add_argument(
        "--steps",
        type=_positive_int,
        default=DEMO_STEPS,
        help=f"training steps (of {FIGURE_SETTINGS['batch_size']} images)",
    )
    d.add_argument(
        "--minutes",
        type=_positive_float,
        default=DEMO_MINUTES,
        help="stop training earlier at this time",
    )
    d.add_argument("--images", type=_positive_int, default=3000, help="synthetic training images")
    d.add_argument("--seed", type=int, default=0, help="random seed")
    d.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress bars or stage lines; the results still print",
    )
    return parser


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("keylink")
    except metadata.PackageNotFoundError:
        return "unknown"


_STOPPED_BY = {
    "steps": "reached its step count",
    "minutes": "reached its time budget",
    "interrupt": "was interrupted; continue it with --resume",
}


def _training_options(args: argparse.Namespace) -> dict:
    """The ``train`` options both methods take."""
    return {
        "resume": args.resume,
        "progress": not args.quiet,
        "steps": args.steps,
        "minutes": args.minutes,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "image_size": args.image_size,
        "resize": args.resize,
        "device": args.device,
        "precision": args.precision,
        "threads": args.threads,
    }


def _train(args: argparse.Namespace) -> None:
    from keylink import api

    if args.method == "weak":
        _train_weak(args)
        return
    for flag, value in (
        ("--labels", args.labels),
        ("--label-column", args.label_column),
        ("--image-column", args.image_column),
        ("--classifier", args.classifier),
        ("--weights", args.weights),
    ):
        if value is not None:
            raise ConfigError(f"{flag} is for --method weak (keypoints from class labels)")
    result = api.train(
        args.images,
        args.out,
        args.keypoints,
        preset_name=args.preset,
        loss=args.loss,
        vgg_weights=args.vgg_weights,
        thickness=args.thickness,
        equivariance=args.equivariance,
        warp_elastic=args.warp_elastic,
        edge_saturate=args.edge_saturate,
        edge_normalize=args.edge_normalize,
        edge_lr=args.edge_lr,
        edge_length_decay=args.edge_length_decay,
        separation_sigma=args.separation_sigma,
        separation_kernel=args.separation_kernel,
        flip_symmetry=args.flip_symmetry,
        flip_symmetry_at=args.flip_symmetry_at,
        **_training_options(args),
    )
    how = _STOPPED_BY[result.stopped_by]
    print(
        f"Trained {result.steps} steps in {result.seconds / 60:.1f} min "
        f"({result.images_per_second:.0f} images/s); the run {how}. Saved to {result.run_dir}"
    )
    if result.skipped:
        print(f"Skipped {result.skipped} unreadable file(s): see {result.run_dir / 'skipped.txt'}")


def _train_weak(args: argparse.Namespace) -> None:
    from keylink import api

    result = api.train_weak(
        args.images,
        args.out,
        labels=args.labels,
        label_column=args.label_column,
        image_column=args.image_column,
        arch=args.classifier,
        weights=args.weights,
        **_training_options(args),
    )
    how = _STOPPED_BY[result.stopped_by]
    print(
        f"Trained the classifier {result.steps} steps in {result.seconds / 60:.1f} min "
        f"({result.images_per_second:.0f} images/s) on {result.train_images} images; the run "
        f"{how}. Saved to {result.run_dir}"
    )
    if result.val_accuracy is not None:
        print(
            f"Held-out accuracy {100 * result.val_accuracy:.1f}% (balanced "
            f"{100 * result.val_balanced_accuracy:.1f}%) on {result.val_images} images."
        )
    if result.skipped:
        print(f"Left out {result.skipped} file(s): see {result.run_dir / 'skipped.txt'}")


def _annotate(args: argparse.Namespace) -> None:
    from keylink import api

    result = api.annotate(
        args.run,
        args.images,
        args.out,
        batch_size=args.batch_size,
        overlays=not args.no_overlays,
        discovered=args.discovered,
        device=args.device,
        progress=not args.quiet,
        skeleton_edges=args.skeleton_edges,
    )
    out = Path(args.out)
    print(f"Annotated {len(result.paths)} images: {out / 'annotations.json'}")
    if hasattr(result, "seconds_per_image"):  # a weak run
        mean = sum(len(k) for k in result.keypoints) / len(result.keypoints)
        print(
            f"{mean:.1f} keypoints per image on average; "
            f"{result.seconds_per_image:.2f} s per image to probe"
        )
    if not args.no_overlays:
        print(f"Overlay pictures: {out / 'overlays'}")
    if result.skipped:
        print(f"Skipped {len(result.skipped)} unreadable file(s) (listed in the COCO file's info)")


def _evaluate(args: argparse.Namespace) -> None:
    from keylink import api
    from keylink.io.coco import write_json_atomic
    from keylink.methods.weak import is_weak_run

    norm = None
    if args.norm:
        parts = [p.strip() for p in args.norm.split(",")]
        if len(parts) != 2 or not all(parts):
            raise ConfigError(
                f"--norm takes two landmark names like left_eye,right_eye: {args.norm}"
            )
        norm = (parts[0], parts[1])
    if is_weak_run(args.run):
        try:
            radii = [float(t) for t in args.radii.split(",") if t.strip()]
        except ValueError as err:
            raise ConfigError(f"--radii takes numbers like 0.1,0.2: {args.radii}") from err
        if not radii or min(radii) <= 0:
            raise ConfigError(f"--radii takes positive numbers like 0.1,0.2: {args.radii}")
        metrics = api.evaluate_weak(
            args.run,
            args.test,
            images=args.images,
            norm=norm,
            radii=radii,
            progress=not args.quiet,
        )
        print(weak_metrics_table(metrics))
        if args.json:
            write_json_atomic(args.json, metrics)
            print(f"Metrics written to {args.json}")
        return
    if not args.fit:
        raise ConfigError("--fit FIT_GT is required to evaluate an autolink run")
    try:
        pck = [float(t) for t in args.pck.split(",") if t.strip()]
    except ValueError as err:
        raise ConfigError(f"--pck takes numbers like 0.05,0.1: {args.pck}") from err
    metrics = api.evaluate(
        args.run,
        args.fit,
        args.test,
        images=args.images,
        norm=norm,
        intercept=args.intercept,
        ridge=args.ridge,
        pck=pck,
        progress=not args.quiet,
    )
    print(metrics_table(metrics))
    if args.json:
        write_json_atomic(args.json, metrics)
        print(f"Metrics written to {args.json}")


def metrics_table(metrics: dict) -> str:
    """The evaluation as a terminal table: keylink beside the mean-shape baseline."""
    ours, base = metrics["keylink"], metrics["mean_shape_baseline"]
    rows = [("", "keylink", "mean shape")]
    rows.append(("NME %", f"{ours['nme_percent']:.2f}", f"{base['nme_percent']:.2f}"))
    for name, value in ours["nme_percent_per_landmark"].items():
        rows.append((f"  {name}", f"{value:.2f}", f"{base['nme_percent_per_landmark'][name]:.2f}"))
    rows.append(("error px", f"{ours['error_px']:.2f}", f"{base['error_px']:.2f}"))
    for t, value in ours["pck_percent"].items():
        rows.append((f"PCK@{t} %", f"{value:.1f}", f"{base['pck_percent'][t]:.1f}"))
    width = max(len(r[0]) for r in rows)
    lines = [
        f"Fit on {metrics['fit']['images']} images, tested on {metrics['test']['images']}; "
        f"NME normalised by {metrics['normalised_by']}."
    ]
    lines += [f"{a:<{width}}  {b:>9}  {c:>10}" for a, b, c in rows]
    return "\n".join(lines)


def weak_metrics_table(metrics: dict) -> str:
    """A weak run's evaluation as a terminal table: precision and recall per radius, keylink
    beside the baselines, then the landmark each class's keypoints hit most."""
    methods = ("keylink", "random", "harris")
    rows = [("", *methods)]
    for metric in ("precision", "recall"):
        for r, values in metrics[f"{metric}_percent"].items():
            rows.append((f"{metric} @{r} %", *(f"{values[m]:.1f}" for m in methods)))
    width = max(len(r[0]) for r in rows)
    lines = [
        f"Tested on {metrics['test']['images']} images, {metrics['keypoints_per_image']:.1f} "
        f"keypoints per image (the baselines get as many); radii are fractions of the "
        f"{metrics['normalised_by']}."
    ]
    lines += [f"{r[0]:<{width}}  " + "  ".join(f"{c:>8}" for c in r[1:]) for r in rows]
    salient = metrics["salient_landmarks"]
    radius = f"{max(metrics['radii']):g}"
    lines.append(f"Landmarks hit per {salient['grouped_by']} (r = {radius}):")
    for name, entry in salient[radius].items():
        counts = ", ".join(f"{k} {v}" for k, v in entry["histogram"].items())
        lines.append(f"  {name} ({entry['images']} images): most hit {entry['most_hit']}; {counts}")
    return "\n".join(lines)


def _name(args: argparse.Namespace) -> None:
    from keylink import api

    summary = api.name(
        args.run,
        args.labels,
        images=args.images,
        ridge=args.ridge,
        suggest=args.suggest,
        progress=not args.quiet,
    )
    print(
        f"Named {len(summary['landmarks'])} landmarks ({', '.join(summary['landmarks'])}) from "
        f"{summary['labelled_images']} labelled images; saved in {args.run}."
    )
    print(
        f"Cross-validated error on the labelled images: {summary['cv_error_px']:.2f} px, "
        f"NME {summary['cv_nme_percent']:.2f}% ({summary['normalised_by']}); ridge "
        f"{summary['ridge']:g}."
    )
    if summary["suggestions"]:
        print("Least sure of these images; label them next:")
        for path in summary["suggestions"]:
            print(f"  {path}")


def _demo(args: argparse.Namespace) -> None:
    from keylink.demo import run_demo

    run_demo(
        args.out,
        keypoints=args.keypoints,
        minutes=args.minutes,
        steps=args.steps,
        n_images=args.images,
        seed=args.seed,
        progress=not args.quiet,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.simplefilter("always", ImageSkippedWarning)
    warnings.formatwarning = lambda msg, category, *a, **k: f"warning: {msg}\n"
    try:
        commands = {
            "train": _train,
            "annotate": _annotate,
            "evaluate": _evaluate,
            "name": _name,
            "demo": _demo,
        }
        commands[args.command](args)
    except (
        ConfigError,
        GroundTruthError,
        ImageInputError,
        RunError,
        FileNotFoundError,
        ValueError,
    ) as err:
        print(f"keylink {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("keylink: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
