"""Training data: preparing a target video (`prepare`) and the frame-sequence dataset
(`dataset`). The prepared run's layout and the letterbox are the target contract's
(``backend.target``)."""
