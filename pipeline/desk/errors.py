"""The support desk's errors: what went wrong, in words a support person can act on."""

from __future__ import annotations


class DeskError(Exception):
    """Something the desk cannot do; the message says why and what to do instead. It never holds
    member data (no address, no name), so it may be shown on a page and written to a log."""


class ActionRefused(DeskError):
    """An action the statement's state, the two-person rule or a missing reason does not allow."""


class ChangeNotApplied(DeskError):
    """An address change approved (the statement is verified, waiting for its resend) whose
    address could not be carried into the run's contact file or freed of an email block; the
    message says what an operator must do. Nothing is emailed meanwhile."""
