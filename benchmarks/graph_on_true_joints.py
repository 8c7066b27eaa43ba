"""How well does AutoLink's graph learning find the skeleton when the keypoints are right?

The detector is replaced by the true joints of the synthetic figures (15 keypoints), so only the
decoder, alpha and the edge weights learn. The report lists, every 100 steps, how many edges the
skeleton keeps and how many of them are true bones, then the strongest edges by name. A second
mode trains the decoder on a fixed graph (the true bones, a star, every pair, the true bones
without one kind of limb segment, ...) and reports the held-out reconstruction loss, which says
which graph the objective itself prefers and how much each limb segment is worth to it.

python benchmarks/graph_on_true_joints.py learn --steps 500 --set edge_length_decay=0.3
python benchmarks/graph_on_true_joints.py fixed --steps 400
python benchmarks/graph_on_true_joints.py fixed --steps 400 --only "true bones"
"""

from __future__ import annotations

import argparse
import itertools

import torch

from keylink.config import RunConfig, apply_overrides, preset
from keylink.data.synthetic import JOINT_NAMES, SKELETON, generate
from keylink.engine import _optimizer
from keylink.geometry import draw_edge_map
from keylink.losses import create_loss
from keylink.methods.autolink import AutoLink

TRUE_BONES = {frozenset(b) for b in SKELETON}


def figures(n: int, size: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, S, S) images in [0, 1] and (N, 15, 2) true joints in normalised coordinates."""
    images, joints = generate(n, size, seed=seed)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    return x, torch.from_numpy(joints) / size * 2 - 1


def rebuild(model: AutoLink, x, keypoints, weights, pairs, generator) -> torch.Tensor:
    """The decoder's reconstruction of ``x`` from its masked copy and the edges drawn on
    ``keypoints`` (the AutoLink forward pass with the detector replaced)."""
    size = x.shape[-2:]
    if len(pairs):
        edges = draw_edge_map(keypoints, pairs, weights, size, model.config.edge_thickness)
    else:
        edges = x.new_zeros(len(x), 1, *size)
    return model.rebuild(x, edges, generator)[0]


def learn(cfg: RunConfig, steps: int, images: int) -> None:
    mc, tc = cfg.model, cfg.train
    x_all, j_all = figures(images, mc.image_size)
    model = AutoLink(mc)
    optimizer = _optimizer(model, tc.weight_decay)
    loss_fn = create_loss(tc.loss, tc.vgg_weights)
    g = torch.Generator().manual_seed(tc.seed)
    edge_lr = tc.edge_lr or tc.lr
    for step in range(1, steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = edge_lr if group["name"] == "edges" else tc.lr
        index = torch.randint(len(x_all), (tc.batch_size,), generator=g)
        x, kp = x_all[index], j_all[index]
        pairs = model.graph.pairs
        loss = loss_fn(rebuild(model, x, kp, model.graph.weights(), pairs, g), x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if tc.edge_length_decay > 0:  # as in keylink.engine.train
            model.graph.decay_by_length(kp, tc.edge_length_decay * edge_lr)
        if step % 100 == 0 or step == steps:
            kept = [(i, j) for i, j, _ in model.skeleton()]
            bones = sum(frozenset(e) in TRUE_BONES for e in kept)
            print(f"step {step}: {len(kept)} edges kept, {bones} of them true bones", flush=True)
    for i, j, w in model.skeleton():
        mark = "bone" if frozenset((i, j)) in TRUE_BONES else ""
        print(f"  {JOINT_NAMES[i]:>15s} - {JOINT_NAMES[j]:<15s} {w:6.3f} {mark}")


def fixed(cfg: RunConfig, steps: int, images: int, only: str = "") -> None:
    mc, tc = cfg.model, cfg.train
    x_all, j_all = figures(images + 500, mc.image_size)
    x_test, j_test = x_all[images:], j_all[images:]
    loss_fn = create_loss(tc.loss, tc.vgg_weights)
    pelvis = JOINT_NAMES.index("pelvis")
    graphs = {
        "no edges": [],
        "true bones": list(SKELETON),
        "true bones + 6 diagonals": [*SKELETON, (0, 10), (0, 11), (2, 14), (3, 14), (2, 9), (3, 8)],
        # What training tends to find instead: shoulders to the opposite knees, crossing the torso.
        "crossing diagonals": [(0, 1), (2, 3), (8, 9), (2, 11), (3, 10), (10, 12), (11, 13)],
        "star from the pelvis": [(pelvis, j) for j in range(len(JOINT_NAMES)) if j != pelvis],
        "every pair": list(itertools.combinations(range(len(JOINT_NAMES)), 2)),
    }
    # What each pair of limb segments is worth to the reconstruction: the true bones without it.
    for segment, (near, far) in {
        "upper arms": ("shoulder", "elbow"),
        "forearms": ("elbow", "wrist"),
        "thighs": ("hip", "knee"),
        "shins": ("knee", "ankle"),
    }.items():
        left_out = {
            frozenset(JOINT_NAMES.index(f"{side}_{joint}") for joint in (near, far))
            for side in ("left", "right")
        }
        graphs[f"true bones - {segment}"] = [b for b in SKELETON if frozenset(b) not in left_out]
    graphs = {name: edges for name, edges in graphs.items() if name.startswith(only)}
    if not graphs:
        raise SystemExit(f"no graph's name starts with {only!r}")
    for name, edge_list in graphs.items():
        torch.manual_seed(tc.seed)
        model = AutoLink(mc)
        optimizer = torch.optim.AdamW(model.decoder.parameters(), tc.lr, weight_decay=1e-3)
        pairs = torch.tensor(edge_list, dtype=torch.long).reshape(-1, 2)
        weights = torch.ones(len(pairs))
        g = torch.Generator().manual_seed(tc.seed)
        for _ in range(steps):
            index = torch.randint(images, (tc.batch_size,), generator=g)
            x = x_all[index]
            loss = loss_fn(rebuild(model, x, j_all[index], weights, pairs, g), x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        g = torch.Generator().manual_seed(tc.seed + 1)
        with torch.no_grad():
            losses = [
                float(loss_fn(rebuild(model, x_test[i : i + 100], j_test[i : i + 100],
                                      weights, pairs, g), x_test[i : i + 100]))
                for i in range(0, len(x_test), 100)
            ]  # fmt: skip
        print(f"{name:26s} {len(pairs):3d} edges: held-out loss {sum(losses) / len(losses):.4f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("mode", choices=["learn", "fixed"])
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--set", action="append", default=[], help="FIELD=VALUE (config fields)")
    p.add_argument("--only", default="", help="fixed: only the graphs whose name starts with this")
    args = p.parse_args()
    model_cfg, train_cfg = preset("cpu", len(JOINT_NAMES))
    cfg = apply_overrides(RunConfig(images="synthetic", model=model_cfg, train=train_cfg), args.set)
    cfg.model.keypoints = len(JOINT_NAMES)
    cfg.validate()
    if args.mode == "learn":
        learn(cfg, args.steps, args.images)
    else:
        fixed(cfg, args.steps, args.images, args.only)


if __name__ == "__main__":
    main()
