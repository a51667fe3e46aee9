"""What the desk needs from its caller: the settings, the ledger and the wall clock."""

from __future__ import annotations

from typing import Protocol

from pipeline.clock import Now
from pipeline.ledger import Ledger
from pipeline.settings import Settings


class DeskContext(Protocol):
    """Satisfied by the stages' context (`pipeline.stages.Context`) and by the web app's: the
    desk reads and writes the ledger only through it, and asks it the time."""

    @property
    def settings(self) -> Settings: ...

    @property
    def ledger(self) -> Ledger: ...

    @property
    def now(self) -> Now: ...
