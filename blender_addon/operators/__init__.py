"""The add-on's operators, one per module; ``CLASSES`` lists them for registration."""

from . import (cancel_dance_job, cancel_setup, cancel_training, forget_training,
               preview_dance_poses, release_gpu, remove_dance_job, render_dance_video,
               resume_training, retarget_dance, retarget_dance_batch, retry_dance_job,
               setup_backend, train_from_strip, use_dance_model)

MODULES = (retarget_dance, retarget_dance_batch, preview_dance_poses, cancel_dance_job,
           retry_dance_job, remove_dance_job, render_dance_video, use_dance_model, train_from_strip,
           cancel_training, resume_training, forget_training, setup_backend, cancel_setup,
           release_gpu)

CLASSES = tuple(cls for module in MODULES for cls in module.CLASSES)
