"""The add-on's logic that needs no Blender: job queue, frame mapping, keyframe sampling,
backend set-up and training runs. Plain pytest imports these modules; the Blender glue in the
parent package stays thin."""
