"""What the add-on's operators share: refusing in one line, the rows they act on, running jobs.

An operator on a row of the job list names its job (``job_id``); one on a row of the training
list names its row (``index``). Both are internal (the panels' buttons call them) and
hidden from the redo panel.
"""

from pathlib import Path

import bpy
from bpy.props import IntProperty, StringProperty

from .. import compat, session


class DanceOperator(bpy.types.Operator):
    """The base of the add-on's operators (never registered itself)."""

    def refuse(self, problem: object, level: str = 'ERROR') -> set[str]:
        """Report ``problem`` to the user and cancel the operator."""
        self.report({level}, str(problem))
        return {'CANCELLED'}


class JobRowOperator(DanceOperator):
    """An operator on one job of the queue (the Dance tab's job list)."""

    bl_options = {'REGISTER', 'INTERNAL'}

    job_id: StringProperty(options={'HIDDEN'})


class RunRowOperator(DanceOperator):
    """An operator on one training run of the Model panel's list: `execute_on` its folder
    (nothing happens for a row that is not there)."""

    bl_options = {'REGISTER', 'INTERNAL'}

    index: IntProperty(options={'HIDDEN'})

    def listed_run(self, context) -> Path | None:
        """The folder of the run on row ``index`` of the list, or None when there is no such row."""
        runs = compat.sequencer_scene(context).dance.training_runs
        return Path(runs[self.index].run_dir) if 0 <= self.index < len(runs) else None

    def execute(self, context):
        run_dir = self.listed_run(context)
        return {'CANCELLED'} if run_dir is None else self.execute_on(context, run_dir)

    def execute_on(self, context, run_dir: Path) -> set[str]:
        """`execute` for the run in ``run_dir``."""
        raise NotImplementedError


def run_queued_jobs() -> None:
    """Run the queue: at once in background mode (no timers there), else on the timer."""
    if bpy.app.background:
        session.run_jobs_now()
    else:
        session.start_timer()
