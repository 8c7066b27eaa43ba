"""Which joints a finished demo run follows, and how other rules would pick its skeleton.

For each ``keylink demo`` folder, on its test figures: the mean distance (px) from each true joint
to the keypoint that is nearest on average, with the median for the elbows and wrists (one
keypoint nearest to both an elbow and its wrist sits between them); then the skeleton as the run
picks it (its strongest edges: K - 1, or the run's ``skeleton_edges``), as a maximum spanning
tree of the edge weights, and as the K - 1 edges whose removal from the edge map raises the
reconstruction loss most (first ``--images`` test figures, one set of masks), each as edges / on
bones / along bones. Also the
strongest edge and whether it is a dot (its keypoints on one spot), the keypoints whose strongest
edge is under 0.05 of the strongest (idle: no gradient reaches them from the reconstruction), and
how many edges that are no dots weigh over 0.1 of the strongest such edge. ``--along`` adds where
each keypoint sits along the limbs: its nearest chain of joints (an arm, a leg, or head - neck -
pelvis) by median distance, and its place t along it (0 the first joint, 1 the middle one, 2 the
last) as median and quartiles over the figures: a keypoint that holds a joint has a narrow
spread, one that slides along a bending limb a wide one (BENCHMARKS.md, sessions 22 and 23).
With ``--pictures``,
``DEMO/tree.png`` shows the test figures with the maximum spanning tree as the skeleton.

python benchmarks/demo_anatomy.py keylink-demo [more demo folders] [--along] [--pictures]
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch

from keylink import api
from keylink.data.dataset import load_folder
from keylink.data.images import Resize
from keylink.data.synthetic import JOINT_NAMES, LIMBS, SKELETON
from keylink.demo import JOINT_RADIUS, LIMB_TOLERANCE, pictures
from keylink.evaluate import skeleton_agreement
from keylink.geometry import draw_edge_map, segment_distance_sq, segment_share
from keylink.io.coco import read_coco_keypoints
from keylink.losses import create_loss
from keylink.report import save_png

ARM_JOINTS = ("left_elbow", "right_elbow", "left_wrist", "right_wrist")
CHAINS = {**LIMBS, "torso": tuple(JOINT_NAMES.index(n) for n in ("head", "neck", "pelvis"))}


def place_on_chain(points: np.ndarray, chain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance from (N, 2) points to (N, C, 2) polylines and the place along them (segment index
    plus the share of that segment) of the nearest point."""
    p, c = torch.as_tensor(points, dtype=torch.float64), torch.as_tensor(chain, dtype=torch.float64)
    a, b = c[:, :-1], c[:, 1:]  # (N, C - 1, 2): the chain's segments
    d = segment_distance_sq(p[:, None], a, b).sqrt()
    t = torch.arange(a.shape[1]) + segment_share(p[:, None], a, b)
    nearest = d.argmin(1, keepdim=True)
    return d.gather(1, nearest)[:, 0].numpy(), t.gather(1, nearest)[:, 0].numpy()


def positions_along_limbs(found: np.ndarray, truth: np.ndarray) -> list[str]:
    """One line per keypoint: its nearest chain, median distance, and place along it."""
    lines = []
    for k in range(found.shape[1]):
        placed = {
            name: place_on_chain(found[:, k], truth[:, list(chain)])
            for name, chain in CHAINS.items()
        }
        name = min(placed, key=lambda n: np.median(placed[n][0]))
        d, t = placed[name]
        lo, mid, hi = np.percentile(t, [25, 50, 75])
        lines.append(
            f"  keypoint {k + 1:2d}: {name:9s} {np.median(d):4.1f} px off, "
            f"t {mid:.2f} [{lo:.2f}, {hi:.2f}]"
        )
    return lines


def spanning_tree(k: int, ranked: list[tuple[tuple[int, int], float]]) -> list[tuple[int, int]]:
    """Kruskal on edges ranked strongest first: the maximum spanning forest."""
    root = list(range(k))

    def find(a: int) -> int:
        while root[a] != a:
            a = root[a]
        return a

    tree = []
    for (i, j), _ in ranked:
        a, b = find(i), find(j)
        if a != b:
            root[a] = b
            tree.append((i, j))
    return tree


def loss_effects(demo: str, config, model, n_images: int) -> torch.Tensor:
    """(E,) rise of the reconstruction loss when each edge alone is left out of the edge map."""
    resize = Resize(config.model.image_size, config.model.resize)
    data = load_folder(f"{demo}/data/test/images", resize, progress=False)
    images = data.batch(list(range(min(n_images, len(data)))))
    loss = create_loss(config.train.loss, config.train.vgg_weights)
    size = images.shape[-2:]
    keypoints = model.detect(images).keypoints
    weights = model.graph.drawn_weights()

    def loss_with(w: torch.Tensor) -> float:
        edges = draw_edge_map(keypoints, model.graph.pairs, w, size, config.model.edge_thickness)
        rebuilt, _ = model.rebuild(images, edges, torch.Generator().manual_seed(0))
        return float(loss(rebuilt.float(), images))

    base = loss_with(weights)
    effects = torch.zeros(len(weights))
    for e in range(len(weights)):
        if weights[e] > 1e-3 * weights.max():  # fainter edges win no pixel: no effect
            effects[e] = loss_with(torch.where(torch.arange(len(weights)) == e, 0.0, weights))
            effects[e] -= base
    return effects


def graph_summary(model) -> str:
    """The strongest edge (1-based, dot or link), idle keypoints, and links drawn over 0.1."""
    w = model.graph.weights().detach()
    pairs = model.graph.pairs.tolist()
    dots = model.dots()
    top = int(w.argmax())
    k = model.config.keypoints
    table = torch.zeros(k, k)
    i, j = model.graph.pairs.T
    table[i, j] = table[j, i] = w
    idle = [a + 1 for a in (table.amax(1) < 0.05 * w.max()).nonzero().flatten().tolist()]
    links = w[~dots]
    strong = int((links > 0.1 * links.max()).sum()) if len(links) else 0
    kind = "a dot" if dots[top] else "a link"
    return (
        f"  strongest edge {pairs[top][0] + 1}-{pairs[top][1] + 1} ({kind}); idle keypoints "
        f"{idle or 'none'}; {strong} links over 0.1 of the strongest link"
    )


def draw_tree(demo: str, tree: list[tuple[int, int]], weights: dict) -> None:
    """DEMO/tree.png: the demo's pictures with ``tree`` as the skeleton."""
    found = api.annotate(f"{demo}/run", f"{demo}/data/test/images", overlays=False, progress=False)
    category = dataclasses.replace(found.category, skeleton=tree)
    found = dataclasses.replace(found, category=category, edge_weights=[weights[e] for e in tree])
    _, truth, _ = read_coco_keypoints(f"{demo}/data/test/annotations.json")
    half = len(truth) // 2
    save_png(f"{demo}/tree.png", pictures(found, truth[half:, :, :2], half))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("demos", nargs="+", help="keylink demo output folders")
    p.add_argument("--images", type=int, default=128, help="test figures for the loss effects")
    p.add_argument("--along", action="store_true", help="where each keypoint sits on the limbs")
    p.add_argument("--pictures", action="store_true", help="write DEMO/tree.png")
    args = p.parse_args()
    for demo in args.demos:
        config, model = api.load(f"{demo}/run")
        model.eval()
        _, found, _ = read_coco_keypoints(f"{demo}/annotations/annotations.json")
        _, truth, _ = read_coco_keypoints(f"{demo}/data/test/annotations.json")
        found, truth = found[..., :2], truth[..., :2]
        dist = np.linalg.norm(found[:, :, None] - truth[:, None], axis=-1)  # (N, K, J)
        nearest = dist.mean(0).argmin(0)  # per joint
        print(demo)
        print(
            "  mean px to the nearest keypoint: "
            + ", ".join(
                f"{name} {dist[:, nearest[j], j].mean():.0f}" for j, name in enumerate(JOINT_NAMES)
            )
        )
        for name in ARM_JOINTS:
            j = JOINT_NAMES.index(name)
            median = np.median(dist[:, nearest[j], j])
            print(f"  {name}: keypoint {nearest[j] + 1}, median {median:.1f} px")
        if args.along:
            print("\n".join(positions_along_limbs(found, truth)))

        print(graph_summary(model))
        k = config.model.keypoints
        chosen = [(i, j) for i, j, _ in model.skeleton()]
        kept = {(i, j) for i, j, _ in model.skeleton(threshold=0.0, max_edges=10**6)}  # no dots
        pairs = list(map(tuple, model.graph.pairs.tolist()))
        weights = dict(zip(pairs, model.graph.weights().tolist(), strict=True))
        by_weight = sorted(((e, weights[e]) for e in kept), key=lambda x: -x[1])
        with torch.no_grad():
            effects = loss_effects(demo, config, model, args.images)
        effect = dict(zip(pairs, effects.tolist(), strict=True))
        by_effect = sorted(((e, effect[e]) for e in kept), key=lambda x: -x[1])
        tree = spanning_tree(k, by_weight)
        rules = {
            "the run's skeleton": chosen,
            "maximum spanning tree": tree,
            "largest loss effect, K - 1": [e for e, v in by_effect[: k - 1] if v > 0],
        }
        for rule, edges in rules.items():
            a = skeleton_agreement(found, edges, truth, SKELETON, JOINT_RADIUS, LIMB_TOLERANCE)
            print(f"  {rule}: {a.edges} edges, {a.on_bones} on bones, {a.along_bones} along")
        top = [f"{v:.4f}" for _, v in by_effect[:16]]
        print(f"  largest loss effects: {', '.join(top)}")
        if args.pictures:
            draw_tree(demo, tree, weights)


if __name__ == "__main__":
    main()
