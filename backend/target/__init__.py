"""The target contract: what training and transfer must agree on about the target person.

Both sides import these modules directly; when they disagree, labels and frames stop lining
up, so each rule has exactly one home here:

* `letterbox`: how the target's video frame sits in the model's canvas (scale, bars, where
  pixels and keypoints land), and cutting the canvas back to the target's shape;
* `face`: the face-box centre of a pose and the face box around it;
* `prepared`: the files of a prepared run (``python -m training prepare``), read and
  written through one typed manifest.

The generator step (label + previous frame -> G -> face residual) is the networks' contract
and lives with them in ``backend.models.step``; the bundle's typed fields live in
``backend.models.bundle``.
"""
