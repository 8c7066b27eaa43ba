"""Training the classifier of the weak method on class labels, with the core's run folder,
checkpoints and resume (keylink.engine's save_checkpoint / latest_checkpoint).

Run folder, beside what the core writes (config.json, metrics.jsonl, checkpoints/, skipped.txt):

    RUN_DIR/split.json    which images were held out for the held-out accuracy
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from keylink.config import RunConfig, WeakConfig
from keylink.data.dataset import ImageSet
from keylink.data.labels import LabelledImages
from keylink.engine import (
    Pace,
    RunError,
    autocast,
    checkpoint_state,
    clock,
    latest_weights,
    prepare,
    progress_bar,
    read_run_config,
    resume_run,
    save_checkpoint,
    scheduled_lr,
    select_device,
    write_run_files,
)
from keylink.io.coco import write_json_atomic
from keylink.models import create_model
from keylink.models.classifier import load_pretrained


@dataclass
class WeakTrainResult:
    run_dir: Path
    steps: int
    seconds: float
    images_per_second: float
    final_loss: float
    stopped_by: str  # "steps", "minutes" or "interrupt"
    val_accuracy: float | None  # held-out accuracy (None without a held-out share)
    val_balanced_accuracy: float | None  # mean of the per-class accuracies
    train_images: int
    val_images: int
    skipped: int = 0


def build_classifier(cfg: WeakConfig) -> torch.nn.Module:
    return create_model(cfg.arch, 3, len(cfg.classes))


def split_indices(labels: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices: ``share`` of every class held out (at least one image of each
    class with two or more), chosen at random with ``seed``."""
    rng = np.random.default_rng(seed)
    held: list[int] = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n = round(share * len(members))
        if share > 0 and len(members) >= 2:
            n = min(max(n, 1), len(members) - 1)
        held += rng.permutation(members)[:n].tolist()
    val = np.array(sorted(held), dtype=np.int64)
    train = np.setdiff1d(np.arange(len(labels)), val)
    return train, val


def augment(x: torch.Tensor, shift: float, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random translation (grey fill), brightness and contrast, optional horizontal flip."""
    b, _, h, w = x.shape
    m = round(shift * min(h, w))
    if m > 0:
        padded = F.pad(x, (m, m, m, m), value=0.5)
        offsets = torch.randint(0, 2 * m + 1, (b, 2), generator=generator).tolist()
        x = torch.stack(
            [padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets)]
        )
    gain = 0.8 + 0.4 * torch.rand(b, 1, 1, 1, generator=generator)
    bias = 0.1 * (torch.rand(b, 1, 1, 1, generator=generator) - 0.5)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * gain + mean + bias).clamp(0, 1)
    if flip:
        which = torch.rand(b, generator=generator) < 0.5
        x = torch.where(which.view(-1, 1, 1, 1), x.flip(-1), x)
    return x


@torch.no_grad()
def evaluate_classifier(
    model: torch.nn.Module,
    data: ImageSet,
    labels: torch.Tensor,
    index: np.ndarray,
    device: torch.device,
    precision: str,
    classes: int,
    batch_size: int = 128,
) -> dict[str, float]:
    """Accuracy, balanced accuracy and mean loss of ``model`` on the images at ``index``."""
    was_training = model.training
    model.eval()
    correct = torch.zeros(classes)
    total = torch.zeros(classes)
    loss_sum = 0.0
    for start in range(0, len(index), batch_size):
        idx = torch.from_numpy(index[start : start + batch_size])
        x = data.batch(idx, device).contiguous(memory_format=torch.channels_last)
        y = labels[idx].to(device)
        with autocast(device, precision):
            logits = model(x).float()
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        hit = (logits.argmax(dim=1) == y).float().cpu()
        correct.index_add_(0, y.cpu(), hit)
        total.index_add_(0, y.cpu(), torch.ones_like(hit))
    model.train(was_training)
    present = total > 0
    return {
        "accuracy": float(correct.sum() / total.sum().clamp(min=1)),
        "balanced_accuracy": float((correct[present] / total[present]).mean()),
        "loss": loss_sum / max(1, len(index)),
    }


def _lr_at(step: int, cfg: WeakConfig) -> float:
    """Linear warm-up, then cosine decay to zero at ``steps``."""
    progress = max(0, step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return scheduled_lr(cfg.lr, step, cfg.warmup_steps, progress, decay=1.0)


def train_classifier(
    config: RunConfig,
    labelled: LabelledImages,
    data: ImageSet,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
) -> WeakTrainResult:
    """Train the run's classifier on ``data`` (decoded ``labelled`` images, unreadable ones left
    out) into ``run_dir``; resumable, bounded by steps and/or minutes."""
    cfg = config.weak
    config.method = "weak"
    cfg.classes = list(labelled.classes)
    config.validate()
    run_dir = Path(run_dir)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = select_device(cfg.device)
    label_of = {p: int(c) for p, c in zip(labelled.paths, labelled.labels, strict=True)}
    labels = torch.tensor([label_of[p] for p in data.paths], dtype=torch.long)
    train_idx, val_idx = split_indices(labels.numpy(), cfg.val_share, cfg.seed)
    if len(np.unique(labels[train_idx].numpy())) < 2:
        raise RunError("fewer than two classes are left to train on after the held-out split")

    torch.manual_seed(cfg.seed)
    model = prepare(build_classifier(cfg), device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    generator = torch.Generator().manual_seed(cfg.seed)

    step, elapsed = resume_run(run_dir, model, optimizer, generator, resume)
    if not resume and cfg.weights:
        load_pretrained(model, cfg.weights)
    skipped = list(data.skipped) + [
        (Path(m), "in the labels, not in the folder") for m in labelled.missing
    ]
    write_run_files(run_dir, config, skipped)
    pace = Pace(elapsed, cfg.minutes)
    write_json_atomic(
        run_dir / "split.json",
        {
            "classes": cfg.classes,
            "train_images": len(train_idx),
            "held_out": [str(data.paths[i]) for i in val_idx],
        },
    )

    # Balanced sampling: every class is drawn equally often, whatever its share of the images.
    train_labels = labels[train_idx]
    if cfg.balance:
        counts = torch.bincount(train_labels, minlength=len(cfg.classes)).float()
        weights = (1.0 / counts.clamp(min=1))[train_labels]
    else:
        weights = torch.ones(len(train_idx))
    train_index = torch.from_numpy(train_idx)

    def checkpoint() -> None:
        save_checkpoint(run_dir, model, checkpoint_state(step, pace.elapsed, optimizer, generator))

    def held_out() -> dict[str, float] | None:
        if len(val_idx) == 0:
            return None
        return evaluate_classifier(
            model, data, labels, val_idx, device, cfg.precision, len(cfg.classes)
        )

    metrics = open(run_dir / "metrics.jsonl", "a")  # noqa: SIM115 - closed in finally
    bar = progress_bar(cfg.steps, step, "training classifier", progress)
    model.train()
    stopped_by, loss_value = "steps", math.nan
    hits, counted = 0, 0
    last_val: dict[str, float] | None = None
    try:
        while step < cfg.steps:
            if pace.out_of_time:
                stopped_by = "minutes"
                break
            t0 = time.perf_counter()
            lr = _lr_at(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            pick = torch.multinomial(weights, cfg.batch_size, replacement=True, generator=generator)
            idx = train_index[pick]
            x = augment(data.batch(idx), cfg.shift, cfg.flip, generator)
            x = x.to(device).contiguous(memory_format=torch.channels_last)
            y = labels[idx].to(device)
            with autocast(device, cfg.precision):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            loss_value = float(loss.detach())
            hits += int((logits.detach().argmax(dim=1) == y).sum())
            counted += len(y)
            pace.add(time.perf_counter() - t0, cfg.batch_size)
            bar.update(1)
            postfix = {"loss": f"{loss_value:.3f}", "img_s": f"{pace.images_per_second:.0f}"}
            if last_val is not None:
                postfix["val_acc"] = f"{last_val['accuracy']:.3f}"
            bar.set_postfix(postfix | {"left": clock(pace.left(cfg.steps - step, cfg.batch_size))})
            record: dict = {}
            if step % cfg.log_every == 0 or step == cfg.steps:
                record = {
                    "step": step,
                    "loss": round(loss_value, 6),
                    "train_accuracy": round(hits / max(1, counted), 4),
                    "lr": lr,
                    "elapsed_s": round(pace.elapsed, 2),
                    "images_per_s": round(pace.images_per_second, 2),
                }
                hits, counted = 0, 0
            if step % cfg.eval_every == 0 or step == cfg.steps:
                last_val = held_out()
                if last_val is not None:
                    record = {"step": step, **record} | {
                        f"val_{k}": round(v, 4) for k, v in last_val.items()
                    }
            if record:
                metrics.write(json.dumps(record) + "\n")
                metrics.flush()
            if step % cfg.checkpoint_every == 0:
                checkpoint()
    except KeyboardInterrupt:
        stopped_by = "interrupt"
    finally:
        bar.close()
    try:
        if last_val is None or stopped_by != "steps":
            last_val = held_out()
            if last_val is not None:
                metrics.write(
                    json.dumps(
                        {"step": step} | {f"val_{k}": round(v, 4) for k, v in last_val.items()}
                    )
                    + "\n"
                )
    finally:
        metrics.close()
    checkpoint()
    return WeakTrainResult(
        run_dir=run_dir,
        steps=step,
        seconds=pace.elapsed,
        images_per_second=pace.images_per_second,
        final_loss=loss_value,
        stopped_by=stopped_by,
        val_accuracy=None if last_val is None else last_val["accuracy"],
        val_balanced_accuracy=None if last_val is None else last_val["balanced_accuracy"],
        train_images=len(train_idx),
        val_images=len(val_idx),
        skipped=len(skipped),
    )


def is_weak_run(run_dir: str | Path) -> bool:
    """Whether a run folder holds a weak (class-label) run; RunError if it is no run folder."""
    return read_run_config(Path(run_dir)).method == "weak"


def load_weak_run(
    run_dir: str | Path, device: str | torch.device = "cpu"
) -> tuple[RunConfig, torch.nn.Module]:
    """The config and trained classifier of a weak run folder (latest checkpoint), in eval mode."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    if config.method != "weak":
        raise RunError(f"{run_dir} is a {config.method} run, not a weak (class-label) run")
    weights = latest_weights(run_dir)
    model = build_classifier(config.weak)
    model.load_state_dict(weights)
    return config, model.to(torch.device(device)).eval()
