"""Would re-learning the graph on a trained detector's keypoints give a skeleton along the limbs?

Takes a finished ``keylink demo`` folder, freezes its detector, resets the edge weights to their
start and trains only the decoder, alpha and the edges for ``--steps`` more steps (edge lr and
length decay the run's unless given), as training does (edge lengths tracked for the dot rule,
normalised logits recentred), then compares the new skeleton with the true bones on the demo's
test figures (the keypoints do not change, so the demo's annotations are reused): edges on true
bones and along them, as ``keylink demo`` counts them.

python benchmarks/graph_on_trained_keypoints.py keylink-demo --steps 400 --lr 3e-4
"""

from __future__ import annotations

import argparse

import torch

from keylink.data.dataset import load_folder
from keylink.data.images import Resize
from keylink.data.synthetic import JOINT_NAMES, SKELETON
from keylink.demo import JOINT_RADIUS, LIMB_TOLERANCE
from keylink.engine import _optimizer, autocast, load_run, prepare
from keylink.evaluate import skeleton_agreement
from keylink.io.coco import read_coco_keypoints
from keylink.losses import create_loss
from keylink.methods.autolink import EdgeGraph


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("demo", help="a keylink demo output folder")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--edge-lr", type=float, help="the run's unless given")
    p.add_argument("--lr", type=float, default=1e-3, help="decoder learning rate")
    p.add_argument("--length-decay", type=float, help="the run's unless given")
    p.add_argument("--unsaturated", action="store_true", help="unbounded edge weights")
    p.add_argument("--mask-drop", type=float, help="the run's own unless given")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="CPU threads (torch's default unless given)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(args.seed)
    config, model = load_run(f"{args.demo}/run")
    mc, tc = config.model, config.train
    edge_lr = args.edge_lr or tc.edge_lr or tc.lr
    decay = tc.edge_length_decay if args.length_decay is None else args.length_decay
    mc.edge_saturate = mc.edge_saturate and not args.unsaturated
    mc.mask_drop = args.mask_drop if args.mask_drop is not None else mc.mask_drop
    model.graph = EdgeGraph.from_config(mc)
    device = torch.device("cpu")
    model = prepare(model, device).train()
    model.detector.requires_grad_(False)
    optimizer = _optimizer(model, config.train.weight_decay)
    for group in optimizer.param_groups:
        group["lr"] = edge_lr if group["name"] == "edges" else args.lr
    loss_fn = create_loss(config.train.loss, None)
    data = load_folder(f"{args.demo}/data/train/images", Resize(mc.image_size, mc.resize), False)
    _, truth, _ = read_coco_keypoints(f"{args.demo}/data/test/annotations.json")
    _, found, _ = read_coco_keypoints(f"{args.demo}/annotations/annotations.json")
    truth, found = truth[..., :2], found[..., :2]

    def agreement():
        kept = [(i, j) for i, j, _ in model.skeleton()]
        return skeleton_agreement(found, kept, truth, SKELETON, JOINT_RADIUS, LIMB_TOLERANCE)

    g = torch.Generator().manual_seed(args.seed)
    for step in range(1, args.steps + 1):
        index = torch.randint(len(data), (config.train.batch_size,), generator=g)
        images = data.batch(index, device).contiguous(memory_format=torch.channels_last)
        with autocast(device, config.train.precision):
            out = model(images, g)
        loss = loss_fn(out["reconstruction"], images)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.graph.after_step(out["keypoints"], decay * edge_lr)
        if step % 100 == 0 or step == args.steps:
            a = agreement()
            print(
                f"step {step}: {a.edges} edges, {a.on_bones} on true bones, "
                f"{a.along_bones} along them",
                flush=True,
            )
    a = agreement()
    name = [JOINT_NAMES[j] if j is not None else "-" for j in a.joint_of]
    for i, j, w in model.skeleton():
        print(f"  {i:2d} {name[i]:>15s} - {j:2d} {name[j]:<15s} {w:.3f}")


if __name__ == "__main__":
    main()
