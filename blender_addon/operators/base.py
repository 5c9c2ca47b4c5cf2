"""The training runs listed in the Dance tab, as the operators on one of its rows see them."""

from pathlib import Path

from .. import compat


def listed_run(context, index):
    """The folder of the run on row ``index`` of the list, or None when there is no such row."""
    runs = compat.sequencer_scene(context).dance.training_runs
    return Path(runs[index].run_dir) if 0 <= index < len(runs) else None
