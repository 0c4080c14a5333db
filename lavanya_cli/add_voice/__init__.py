"""``lavanya add-voice`` as a library: add a voice to a model root so that it ends up checked and
verified, or the root is left as it was.

``checklist`` runs the steps in order; ``source`` reads SOURCE, ``staging`` holds the staging
directories and the undo log, ``steps`` the steps themselves, ``git`` the ``.gitattributes``
step and the commit lines, ``result`` what a run reports.
"""

from .checklist import add_voice, check_names, say_where_it_stands
from .result import AddVoiceResult, Step, StepFailed
from .source import choose_weights, locate_source

__all__ = ["AddVoiceResult", "Step", "StepFailed", "add_voice", "check_names", "choose_weights", "locate_source",
           "say_where_it_stands"]
