"""The add-on's operators, grouped by subject; ``CLASSES`` lists them for registration.

``retarget`` makes strips from source strips (retarget, batch, pose preview), ``job_list``
acts on the job list, ``render`` renders the sequencer to a video, ``training`` trains models
and picks the one to use, ``backend_setup`` sets up and stops the backend; ``base`` holds what
they share.
"""

from . import backend_setup, job_list, render, retarget, training

MODULES = (retarget, job_list, render, training, backend_setup)

CLASSES = tuple(cls for module in MODULES for cls in module.CLASSES)
