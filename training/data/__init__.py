"""Training data: preparing a target video, letterboxing, and the frame-sequence dataset."""
