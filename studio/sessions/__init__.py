"""The ad-video session pipeline of seed 004: prompts -> product images -> mood board ->
clips -> final video, each generation a job of the job machinery and each result an asset.

    states.py    the state machine, the stages and the progress formula
    inputs.py    createSession's input checks
    plan.py      what each stage submits, and what a finished job writes onto its asset
    events.py    the `session:{id}` events sessionProgress follows
    pipeline.py  SessionPipeline: the mutations and the runner listeners
"""

from comfygraph.studio.sessions.inputs import SessionSpec
from comfygraph.studio.sessions.pipeline import Outcome, SessionPipeline

__all__ = ["Outcome", "SessionPipeline", "SessionSpec"]
