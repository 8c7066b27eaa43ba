"""Weakly supervised keypoints from class labels (after Mo Shan, "Weakly supervised keypoint
detection", UC San Diego): a classifier trained on class labels alone is probed for the image parts
it relies on, and those are the keypoints.

- :mod:`.train`: the classifier's training (run folder, checkpoints, resume, held-out accuracy)
- :mod:`.probes`: occlusion sensitivity, guided backpropagation, their combination
- :mod:`.pipeline`: annotation (peaks, Förstner refinement, COCO output, pictures)
- :mod:`.evaluate`: precision and recall against landmarks, baselines, salient landmarks
"""

from keylink.methods.weak.evaluate import evaluate_weak
from keylink.methods.weak.pipeline import WeakAnnotations, WeakAnnotator, annotate_weak
from keylink.methods.weak.train import (
    WeakTrainResult,
    is_weak_run,
    load_weak_run,
    train_classifier,
)

__all__ = [
    "WeakAnnotations",
    "WeakAnnotator",
    "WeakTrainResult",
    "annotate_weak",
    "evaluate_weak",
    "is_weak_run",
    "load_weak_run",
    "train_classifier",
]
