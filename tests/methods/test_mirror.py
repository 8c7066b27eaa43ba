"""Mirror recruitment: finding mirror partners, choosing recruits, mirroring their edges."""

import torch

from keylink.geometry import all_pairs
from keylink.methods.mirror import (
    mirror_partners,
    mirrored_pairs,
    recruit_plan,
    strongest_edges,
)

# A left elbow, a right elbow and a head, on two images (normalised coordinates).
LEFT, RIGHT, HEAD = 0, 1, 2
POINTS = torch.tensor(
    [[[-0.5, 0.2], [0.5, 0.2], [0.0, -0.6]], [[-0.3, 0.4], [0.4, 0.1], [0.1, -0.5]]]
)


def mirror_of(points: torch.Tensor) -> torch.Tensor:
    """What a detector that tells left from right finds on the flipped images, flipped back:
    each keypoint lands on its mirror part (left <-> right; the head stays)."""
    return points[:, [RIGHT, LEFT, HEAD]]


def test_each_side_finds_the_other_and_a_central_part_itself():
    assert mirror_partners(POINTS, mirror_of(POINTS), radius=0.1) == [RIGHT, LEFT, HEAD]


def test_a_part_whose_mirror_no_keypoint_follows_has_no_partner():
    points = POINTS.clone()
    points[:, RIGHT] = torch.tensor([0.9, 0.9])  # the right elbow's keypoint idles elsewhere
    mirrored = mirror_of(POINTS)  # the mirror parts are still where they are
    assert mirror_partners(points, mirrored, radius=0.1)[LEFT] is None


def test_idle_keypoints_serve_the_strongest_lonely_keypoints_first():
    partners = [None, None, 2, None, None]
    strongest = torch.tensor([0.5, 1.0, 0.8, 0.01, 0.0])
    # 0 and 1 lack a mirror; 3 and 4 idle (under 5% of the strongest); 2 is central.
    assert recruit_plan(partners, strongest) == {3: 1, 4: 0}
    assert recruit_plan([None, 1], torch.tensor([1.0, 0.5])) == {}  # nobody idles
    assert recruit_plan([None, None], torch.zeros(2)) == {}


def test_strongest_edges_takes_the_largest_weight_at_either_end():
    pairs = all_pairs(3)  # (0, 1), (0, 2), (1, 2)
    weights = torch.tensor([0.2, 0.7, 0.1])
    assert torch.allclose(strongest_edges(weights, pairs, 3), torch.tensor([0.7, 0.2, 0.7]))


def test_a_recruit_gets_its_partners_edges_mirrored():
    # 0 = right shoulder, 1 = right elbow, 2 = head, 3 = left shoulder, 4 = idle recruit.
    pairs = all_pairs(5)
    index = {tuple(p): e for e, p in enumerate(pairs.tolist())}
    partners = [3, None, 2, 0, None]
    mapping = mirrored_pairs(pairs, {4: 1}, partners)
    # right elbow - right shoulder -> recruit - left shoulder; right elbow - head -> recruit -
    # head; right elbow - left shoulder -> recruit - right shoulder; the elbow's edge to the
    # recruit itself is left out.
    assert sorted(mapping) == sorted(
        [
            (index[(0, 1)], index[(3, 4)]),
            (index[(1, 2)], index[(2, 4)]),
            (index[(1, 3)], index[(0, 4)]),
        ]
    )
