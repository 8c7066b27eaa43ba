"""The training runner: run folders, checkpoints, resume, progress, precision and devices.

Run folder layout::

    RUN_DIR/config.json           the validated RunConfig
    RUN_DIR/metrics.jsonl         one JSON line per logged step
    RUN_DIR/samples/step_*.png    pictures during training
    RUN_DIR/checkpoints/step_*/   model.safetensors + state.pt (optimizer, step, RNG)
    RUN_DIR/checkpoints/latest    name of the newest complete checkpoint
    RUN_DIR/skipped.txt           images that could not be read
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from keylink.config import ConfigError, RunConfig
from keylink.data.dataset import ImageSet
from keylink.geometry import random_affine, random_flow, warp_images
from keylink.io.files import write_text_atomic
from keylink.losses import (
    create_loss,
    equivariance_loss,
    flip_symmetry_loss,
    separation_loss,
)
from keylink.methods.autolink import AutoLink

KEEP_CHECKPOINTS = 2


class RunError(RuntimeError):
    """A run folder is missing, incomplete or incompatible."""


# ---------------------------------------------------------------- devices and precision
def select_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but no CUDA GPU is available")
    return device


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    # bf16 only pays off on CPUs with native bf16 (AVX-512 BF16 / AMX); elsewhere it is emulated.
    return _cpu_has_flag("avx512_bf16") or _cpu_has_flag("amx_bf16")


def _cpu_has_flag(flag: str) -> bool:
    try:
        return flag in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def autocast(device: torch.device, precision: str):
    """bf16 autocast for the convolutions where it helps; geometry is kept in fp32 by the model."""
    use_bf16 = precision == "bf16" or (precision == "auto" and bf16_supported(device))
    if not use_bf16:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def prepare(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    return model.to(device=device, memory_format=torch.channels_last)


# ---------------------------------------------------------------- atomic files and checkpoints
def save_checkpoint(run_dir: Path, model: torch.nn.Module, state: dict) -> Path:
    """Write a complete checkpoint folder, then point ``latest`` at it (each step atomic)."""
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{state['step']:07d}"
    tmp = root / f".tmp-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(tmp / "model.safetensors"))
    torch.save(state, tmp / "state.pt")
    final = root / name
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    write_text_atomic(root / "latest", name)
    old = sorted(p for p in root.glob("step_*") if p.is_dir() and p.name != name)
    for p in old[: max(0, len(old) - (KEEP_CHECKPOINTS - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = run_dir / "checkpoints" / "latest"
    if not pointer.is_file():
        return None
    path = run_dir / "checkpoints" / pointer.read_text().strip()
    return path if (path / "model.safetensors").is_file() else None


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[RunConfig, AutoLink]:
    """The config and trained model of a run folder (latest checkpoint), in eval mode."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    if config.method != "autolink":
        raise RunError(f"{run_dir} is a {config.method!r} run, not an autolink run")
    weights = latest_weights(run_dir)
    model = AutoLink(config.model)
    model.load_state_dict(weights)
    return config, model.to(torch.device(device)).eval()


def read_run_config(run_dir: Path) -> RunConfig:
    """The config of a run folder; RunError if it is no run folder."""
    if not (run_dir / "config.json").is_file():
        raise RunError(f"{run_dir} is not a keylink run folder (no config.json)")
    return RunConfig.load(run_dir / "config.json")


def latest_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """The model weights of a run's latest checkpoint; RunError if it has none yet."""
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise RunError(f"{run_dir} has no checkpoint yet: train it first (keylink train)")
    return load_file(str(ckpt / "model.safetensors"))


def resume_run(
    run_dir: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    resume: bool,
) -> tuple[int, float]:
    """(step, elapsed seconds) to start from: with ``resume`` the latest checkpoint's, its
    weights, optimizer, generator and RNG state loaded; else (0, 0.0), refusing a run folder
    that already holds a checkpoint."""
    ckpt = latest_checkpoint(run_dir)
    if resume:
        if ckpt is None:
            raise RunError(f"--resume: {run_dir} has no checkpoint to resume from")
        model.load_state_dict(load_file(str(ckpt / "model.safetensors")))
        state = torch.load(ckpt / "state.pt", map_location="cpu", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        return int(state["step"]), float(state["elapsed"])
    if ckpt is not None:
        raise RunError(
            f"{run_dir} already holds a trained run; "
            "use --resume to continue it or pick a new --out"
        )
    return 0, 0.0


def checkpoint_state(
    step: int, elapsed: float, optimizer: torch.optim.Optimizer, generator: torch.Generator
) -> dict:
    """What a checkpoint keeps beside the weights, for :func:`resume_run` to continue exactly."""
    return {
        "step": step,
        "elapsed": elapsed,
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
    }


def write_run_files(run_dir: Path, config: RunConfig, skipped: list[tuple[Path, str]]) -> None:
    """Create the run folder with its ``config.json``, and ``skipped.txt`` if files were left
    out."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.json", config.to_json())
    if skipped:
        write_text_atomic(run_dir / "skipped.txt", "".join(f"{p}\t{why}\n" for p, why in skipped))


class Pace:
    """A run's training time: ``elapsed`` over all its sessions, bounded by ``minutes``; the
    seconds and images of this session give the throughput."""

    def __init__(self, elapsed: float, minutes: float | None) -> None:
        self.elapsed = elapsed
        self.deadline = minutes * 60.0 if minutes else math.inf
        self.seconds = 0.0
        self.images = 0

    @property
    def out_of_time(self) -> bool:
        return self.elapsed >= self.deadline

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0

    def progress(self, step: int, steps: int) -> float:
        """The share of the run done: of its steps or of its minutes, whichever is further."""
        return max(step / steps, self.elapsed / self.deadline)

    def add(self, seconds: float, images: int) -> None:
        """Count one step of ``images`` that took ``seconds``."""
        self.elapsed += seconds
        self.seconds += seconds
        self.images += images

    def left(self, steps: int, batch_size: int) -> float:
        """Seconds until ``steps`` more steps are done at this pace, or until the deadline."""
        done = max(1, self.images // batch_size)
        return min(steps * self.seconds / done, self.deadline - self.elapsed)


def progress_bar(total: int, initial: int, desc: str, progress: bool) -> tqdm:
    """The training progress bar, from ``initial`` to ``total`` steps."""
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="step",
        disable=not progress,
        dynamic_ncols=True,
        # tqdm's own ETA ignores the --minutes bound; "left" in the postfix accounts for both.
        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]",
    )


# ---------------------------------------------------------------- training
@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    seconds: float
    images_per_second: float
    final_loss: float
    stopped_by: str  # "steps", "minutes" or "interrupt"
    skipped: int = 0  # unreadable images left out


def clock(seconds: float) -> str:
    """``seconds`` as h:mm:ss."""
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _thickness_scale(step: int, start: float, steps: int) -> float:
    if steps <= 0 or step >= steps:
        return 1.0
    return start ** (1 - step / steps)


def scheduled_lr(base: float, step: int, warmup: int, progress: float, decay: float) -> float:
    """Linear warm-up over ``warmup`` steps, then constant, then a cosine to zero over the last
    ``decay`` share of the run (``progress``: the share of the run done, in [0, 1])."""
    lr = base * min(1.0, (step + 1) / warmup) if warmup > 0 else base
    if decay <= 0:
        return lr
    t = min(1.0, max(0.0, (progress - (1 - decay)) / decay))
    return lr * 0.5 * (1 + math.cos(math.pi * t))


def _optimizer(model: AutoLink, weight_decay: float) -> torch.optim.Optimizer:
    # No decay on the edge logits and alpha: decay would pull every edge weight towards softplus(0).
    special = {id(model.graph.theta), id(model.alpha)}
    rest = [p for p in model.parameters() if id(p) not in special]
    groups = [
        {"params": rest, "weight_decay": weight_decay, "name": "networks"},
        {"params": [model.alpha], "weight_decay": 0.0, "name": "networks"},
        {"params": [model.graph.theta], "weight_decay": 0.0, "name": "edges"},
    ]
    return torch.optim.AdamW(groups)


def train(
    config: RunConfig,
    data: ImageSet,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    on_sample=None,
) -> TrainResult:
    """Train AutoLink on ``data`` into ``run_dir``; resumable, bounded by steps and/or minutes."""
    config.validate()
    run_dir = Path(run_dir)
    tc = config.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = select_device(tc.device)
    torch.manual_seed(tc.seed)
    model = prepare(AutoLink(config.model), device)
    optimizer = _optimizer(model, tc.weight_decay)
    generator = torch.Generator().manual_seed(tc.seed)
    loss_fn = create_loss(tc.loss, tc.vgg_weights)
    if isinstance(loss_fn, torch.nn.Module):
        loss_fn = loss_fn.to(device)

    step, elapsed = resume_run(run_dir, model, optimizer, generator, resume)
    write_run_files(run_dir, config, data.skipped)
    pace = Pace(elapsed, tc.minutes)

    def checkpoint() -> None:
        save_checkpoint(run_dir, model, checkpoint_state(step, pace.elapsed, optimizer, generator))

    metrics = open(run_dir / "metrics.jsonl", "a")  # noqa: SIM115 - closed in finally
    bar = progress_bar(tc.steps, step, "training", progress)
    model.train()
    stopped_by, loss_value = "steps", math.nan
    try:
        while step < tc.steps:
            if pace.out_of_time:
                stopped_by = "minutes"
                break
            t0 = time.perf_counter()
            progress = pace.progress(step, tc.steps)
            lr = scheduled_lr(tc.lr, step, tc.warmup_steps, progress, tc.lr_decay)
            edge_lr = scheduled_lr(
                tc.edge_lr or tc.lr, step, tc.warmup_steps, progress, tc.lr_decay
            )
            for group in optimizer.param_groups:
                group["lr"] = edge_lr if group["name"] == "edges" else lr
            model.thickness_scale = _thickness_scale(step, tc.thickness_start, tc.thickness_steps)
            index = torch.randint(len(data), (tc.batch_size,), generator=generator)
            images = data.batch(index, device).contiguous(memory_format=torch.channels_last)
            with autocast(device, tc.precision):
                out = model(images, generator)
            loss = loss_fn(out["reconstruction"], images)
            if tc.separation > 0:
                loss = loss + tc.separation * separation_loss(
                    out["keypoints"], tc.separation_sigma, tc.separation_kernel
                )
            if tc.equivariance > 0:
                affine = random_affine(len(images), generator=generator).to(device)
                flow = None
                if tc.warp_elastic > 0:
                    flow = random_flow(len(images), tc.warp_elastic, generator=generator)
                    flow = flow.to(device)
                warped = warp_images(images, affine, flow)
                with autocast(device, tc.precision):
                    moved = model.detect(warped.contiguous(memory_format=torch.channels_last))
                loss = loss + tc.equivariance * equivariance_loss(
                    out["keypoints"], moved.keypoints, affine, flow
                )
            if tc.flip_symmetry > 0 and progress >= tc.flip_symmetry_at:
                with autocast(device, tc.precision):
                    mirror = images.flip(-1).contiguous(memory_format=torch.channels_last)
                    flipped = model.detect(mirror)
                loss = loss + tc.flip_symmetry * flip_symmetry_loss(
                    out["keypoints"], flipped.keypoints
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            model.graph.after_step(out["keypoints"], tc.edge_length_decay * edge_lr)
            step += 1
            loss_value = float(loss.detach())
            pace.add(time.perf_counter() - t0, tc.batch_size)
            bar.update(1)
            bar.set_postfix(
                loss=f"{loss_value:.4f}",
                img_s=f"{pace.images_per_second:.0f}",
                left=clock(pace.left(tc.steps - step, tc.batch_size)),
            )
            if step % tc.log_every == 0 or step == tc.steps:
                w = model.graph.drawn_weights().detach()
                record = {
                    "step": step,
                    "loss": round(loss_value, 6),
                    "lr": lr,
                    "elapsed_s": round(pace.elapsed, 2),
                    "images_per_s": round(pace.images_per_second, 2),
                    "edge_weight_max": round(float(w.max()), 4),
                    "edges_on": int((w > 0.1).sum()),
                    "alpha": round(float(model.alpha.detach()), 4),
                }
                metrics.write(json.dumps(record) + "\n")
                metrics.flush()
            if on_sample is not None and step % tc.sample_every == 0:
                on_sample(model, step, images, out)
            if step % tc.checkpoint_every == 0:
                checkpoint()
    except KeyboardInterrupt:
        stopped_by = "interrupt"
    finally:
        bar.close()
        metrics.close()
    checkpoint()
    return TrainResult(
        run_dir=run_dir,
        steps=step,
        seconds=pace.elapsed,
        images_per_second=pace.images_per_second,
        final_loss=loss_value,
        stopped_by=stopped_by,
        skipped=len(data.skipped),
    )
