"""Task-name sets shared by training, decoding and scoring."""

from __future__ import annotations

#: Tasks that predict an emotion label, in order of preference: the first one a model was trained
#: on gives the decoded label and the unweighted accuracy (UA) used to pick ``best_ua``.
EMOTION_TASKS = ("ser_sed", "ser")
