"""Does a trained decoder still use the edge map? Reconstruction loss with and without it.

Takes finished ``keylink demo`` folders and, on the first 128 test figures, compares the run's
loss with its own edge map against the loss with the edge map set to zero (the same masks).
It also measures what the edge map adds to the decoder's first layer, exactly (fp32) and as
bf16 training computes it: a faint edge map drowns in the rounding of the masked image's part.

python benchmarks/edge_map_ablation.py keylink-demo [more demo folders]
"""

from __future__ import annotations

import argparse

import torch

from keylink import api
from keylink.data.dataset import load_folder
from keylink.data.images import Resize
from keylink.losses import create_loss


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("demos", nargs="+", help="keylink demo output folders")
    p.add_argument("--images", type=int, default=128)
    args = p.parse_args()
    for demo in args.demos:
        config, model = api.load(f"{demo}/run")
        model.eval()
        resize = Resize(config.model.image_size, config.model.resize)
        data = load_folder(f"{demo}/data/test/images", resize, progress=False)
        images = data.batch(list(range(min(args.images, len(data)))))
        loss = create_loss(config.train.loss, config.train.vgg_weights)
        with torch.no_grad():
            edges = model.edge_map(model.detect(images).keypoints, images.shape[-2:])
            losses = []
            for drawn in (edges, torch.zeros_like(edges)):
                rebuilt, masked = model.rebuild(images, drawn, torch.Generator().manual_seed(0))
                losses.append(float(loss(rebuilt.float(), images)))
            signal, error = first_layer_edge_signal(model, masked, edges)
        print(
            f"{demo}: loss {losses[0]:.3f} with the edge map (largest value "
            f"{float(edges.max()):.2g}), {losses[1]:.3f} without it; in the first layer the edge "
            f"map adds {signal:.2g} on average, bf16 gets that wrong by {error:.2g}"
        )


def first_layer_edge_signal(model, masked, edges) -> tuple[float, float]:
    """Mean |what the edges add| to the decoder's first conv (fp32), and the mean error of the
    same difference in bf16 autocast, where each output is rounded with the masked image's part
    (``masked``: the masked images the decoder was given)."""
    conv = next(m for m in model.decoder.modules() if isinstance(m, torch.nn.Conv2d))
    image_part = model.alpha * (masked * 2 - 1)
    with_edges = torch.cat([image_part, edges], 1)
    without = torch.cat([image_part, torch.zeros_like(edges)], 1)
    exact = conv(with_edges) - conv(without)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        rounded = conv(with_edges).float() - conv(without).float()
    return float(exact.abs().mean()), float((rounded - exact).abs().mean())


if __name__ == "__main__":
    main()
