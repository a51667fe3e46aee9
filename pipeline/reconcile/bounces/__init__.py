"""Parse one raw bounce message into per-recipient delivery outcomes.

Real bounce mailboxes receive much more than RFC 3464 DSNs: RFC 5965 complaint reports (and
providers' equivalents), RFC 3834 auto-replies, and free-text notices from qmail, Exim, old
Exchange, Lotus Notes, Postfix without DSN, Japanese carriers and so on. This package turns any
of them into `Bounce`; `pipeline.outcomes.classify` decides what each recipient's failure means.

PHI: a bounce usually returns the original statement email. `Bounce` keeps status fields only
(recipient, action, codes, the remote server's reply text). The returned body, attachments and
the original Subject are never kept, logged, or quoted in exceptions; "Subject:" lines and the
original subject text are scrubbed from the reply text we keep.
"""

from pipeline.reconcile.bounces.parse import Bounce, UnparseableBounce, parse_bounce, parse_ses_notification

__all__ = ["Bounce", "UnparseableBounce", "parse_bounce", "parse_ses_notification"]
