"""keylink: annotate keypoints automatically.

import keylink
keylink.train("images/", "runs/birds", keypoints=16)
result = keylink.annotate("runs/birds", "images/", "annotations/")
"""

from keylink.api import annotate, load, make_config, train

__all__ = ["annotate", "load", "make_config", "train"]
