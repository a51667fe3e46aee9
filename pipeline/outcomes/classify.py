"""Classify one delivery failure into a category and the queue that handles it.

One classifier serves both SMTP replies at send time and asynchronous bounces, so a statement
is routed the same way whichever path reported the failure. The decisions live in one table,
`pipeline/outcomes/bounce_rules.toml`, that a compliance reviewer can read without Python; this
module only loads it and applies it in order (first matching rule wins).

Safety rules that are code, not data (documented at the top of the table too):
- a temporary reply (4.x.x / 4xx) never condemns an address: recipient-caused categories
  become TRANSIENT (retry);
- UNKNOWN goes to verification when the failure is permanent (never resend blindly), to retry
  when temporary, and is ignored only when there is no sign of failure at all.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

RULES_PATH = Path(__file__).with_name("bounce_rules.toml")

STATUS_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
"""An RFC 3463 enhanced status code inside free text ("550 5.1.1 ...", "(#5.1.2)")."""
ADDRESS_RE = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
"""Mail addresses are removed before matching: 'spam@example.org' says nothing about the reply."""
MULTILINE_REPLY_RE = re.compile(r"\b[245]\d\d-")
REPLY_PREFIX_RE = re.compile(r"\b[245]\d\d[- ](?:#?[245]\.\d{1,3}\.\d{1,3}\b)?")
"""Continuation prefixes of multi-line replies ("550-5.7.1 ... 550-5.7.1 ...") split phrases."""
LEADING_CODES_RE = re.compile(r"^(?:([245]\d\d)[ -])?#?(?:([245]\.\d{1,3}\.\d{1,3})(?![\d.]))?")
"""A raw SMTP reply as send-time callers see it: "550 5.1.1 <x>: User unknown"."""


class PoolAction(StrEnum):
    """What a sender-caused failure says about the IP pool that sent the message."""

    NONE = "none"
    THROTTLE = "throttle"  # we send too fast for this receiver
    PAUSE = "pause"  # the receiver distrusts our IP, domain or authentication


class Queue(StrEnum):
    RETRY = "retry"
    VERIFY = "verify"
    PAPER = "paper"
    IGNORE = "ignore"


class Category(StrEnum):
    USER_UNKNOWN = "user_unknown"
    DOMAIN_UNKNOWN = "domain_unknown"
    MAILBOX_DISABLED = "mailbox_disabled"
    MAILBOX_FULL = "mailbox_full"
    MESSAGE_TOO_LARGE = "message_too_large"
    CONTENT_REJECTED = "content_rejected"
    SPAM_OR_VIRUS = "spam_or_virus"
    POLICY = "policy"
    BLOCKED = "blocked"
    RATE_LIMITED = "rate_limited"
    SECURITY = "security"
    TRANSIENT = "transient"
    EXPIRED = "expired"
    AUTO_REPLY = "auto_reply"
    COMPLAINT = "complaint"
    DELIVERED = "delivered"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Classification:
    category: Category
    queue: Queue
    recipient_caused: bool  # True → the address itself is bad (verification + suppression)
    permanent: bool


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the table: all present conditions must hold."""

    category: Category
    why: str
    status: re.Pattern[str] | None
    reply: re.Pattern[str] | None
    text: re.Pattern[str] | None

    def matches(self, reply_code: int | None, status: str | None, text: str) -> bool:
        if self.status is not None and (status is None or not self.status.fullmatch(status)):
            return False
        if self.reply is not None and (reply_code is None or not self.reply.fullmatch(str(reply_code))):
            return False
        return self.text is None or self.text.search(text) is not None


@dataclass(frozen=True, slots=True)
class CategoryPolicy:
    queue: Queue
    recipient_caused: bool
    permanent_default: bool
    queue_if_temporary: Queue | None = None
    queue_if_no_evidence: Queue | None = None
    pool_action: PoolAction = PoolAction.NONE


@dataclass(frozen=True, slots=True)
class RuleTable:
    rules: tuple[Rule, ...]
    categories: dict[Category, CategoryPolicy]


def _any_of(patterns: list[str], *, translate_glob: bool = False, flags: int = 0) -> re.Pattern[str]:
    """Compile a list of alternatives into one pattern ("*" in codes = any number)."""
    if translate_glob:
        patterns = [re.escape(p).replace(r"\*", r"\d+").replace("x", r"\d") for p in patterns]
    return re.compile("|".join(f"(?:{p})" for p in patterns), flags)


def _lower_case_phrases(index: int, patterns: list[str]) -> list[str]:
    """Phrases are matched against lower-cased text (3x faster than re.IGNORECASE)."""
    for p in patterns:
        if re.sub(r"\\.", "", p) != re.sub(r"\\.", "", p).lower():
            raise ValueError(f"bounce rules: rule {index}: write phrases in lower case: {p!r}")
    return patterns


def load_rules(path: Path = RULES_PATH) -> RuleTable:
    """Load and validate the table; a typo in a category name fails loudly, not silently."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    categories = {
        Category(name): CategoryPolicy(
            queue=Queue(spec["queue"]),
            recipient_caused=bool(spec["recipient_caused"]),
            permanent_default=bool(spec["permanent_default"]),
            queue_if_temporary=Queue(spec["queue_if_temporary"]) if "queue_if_temporary" in spec else None,
            queue_if_no_evidence=(
                Queue(spec["queue_if_no_evidence"]) if "queue_if_no_evidence" in spec else None
            ),
            pool_action=PoolAction(spec.get("pool_action", "none")),
        )
        for name, spec in data["category"].items()
    }
    missing = set(Category) - set(categories)
    if missing:
        raise ValueError(f"bounce rules: categories without a queue: {sorted(missing)}")
    rules = []
    for i, spec in enumerate(data["rule"]):
        if not ({"status", "reply", "text"} & spec.keys()):
            raise ValueError(f"bounce rules: rule {i} has no condition")
        rules.append(
            Rule(
                category=Category(spec["category"]),
                why=spec.get("why", ""),
                status=_any_of(spec["status"], translate_glob=True) if "status" in spec else None,
                reply=_any_of(spec["reply"], translate_glob=True) if "reply" in spec else None,
                text=_any_of(_lower_case_phrases(i, spec["text"])) if "text" in spec else None,
            )
        )
    return RuleTable(rules=tuple(rules), categories=categories)


@lru_cache(maxsize=1)
def rule_table() -> RuleTable:
    """The table shipped with the package, loaded once per process."""
    return load_rules()


def pool_action(category: Category) -> PoolAction:
    """The table's pool action for a category: sender-caused failures hold the sending pool."""
    return rule_table().categories[category].pool_action


def normalize_status(value: str | None) -> str | None:
    """'5.1.1 (Remote server said ...)' → '5.1.1'; anything without a code → None."""
    if not value:
        return None
    m = STATUS_RE.search(value)
    return ".".join(m.groups()) if m else None


def _temporary(reply_code: int | None, status: str | None) -> bool | None:
    """True/False when the codes say the failure is temporary or not, None without codes."""
    if status is not None:
        return status[0] == "4"
    if reply_code is not None:
        return 400 <= reply_code < 500
    return None


def for_category(category: Category, *, permanent: bool | None = None) -> Classification:
    """A classification decided by structure rather than by reply text (ARF, auto-reply, ...)."""
    policy = rule_table().categories[category]
    perm = policy.permanent_default if permanent is None else permanent
    return Classification(category, policy.queue, policy.recipient_caused, perm)


def _reply_text(diagnostic: str) -> str:
    """Lower-cased, one line, addresses and multi-line reply prefixes removed: phrases match."""
    text = " ".join((diagnostic or "").split()).lower()
    text = ADDRESS_RE.sub("<>", text).replace("<<<", " ").replace(">>>", " ")
    if MULTILINE_REPLY_RE.search(text):
        text = REPLY_PREFIX_RE.sub(" ", text)
    return " ".join(text.split())


def _reply_codes(
    reply_code: int | None, enhanced_status: str | None, diagnostic: str
) -> tuple[int | None, str | None]:
    """The given codes, else the ones leading a raw reply ("550 5.1.1 ...")."""
    leading = LEADING_CODES_RE.match(" ".join((diagnostic or "").split()))
    status = normalize_status(enhanced_status) or (leading.group(2) if leading else None)
    if reply_code is None and leading and leading.group(1):
        reply_code = int(leading.group(1))
    return (reply_code if reply_code is not None and 200 <= reply_code < 600 else None), status


def explain(
    reply_code: int | None, enhanced_status: str | None, diagnostic: str
) -> tuple[Classification, str]:
    """classify() plus the reason text of the rule that decided, for audit trails."""
    table = rule_table()
    code, status = _reply_codes(reply_code, enhanced_status, diagnostic)
    text = _reply_text(diagnostic)
    rule = next((r for r in table.rules if r.matches(code, status, text)), None)
    category = rule.category if rule else Category.UNKNOWN
    why = rule.why if rule else "no rule matched"
    temporary = _temporary(code, status)
    if table.categories[category].recipient_caused and temporary:
        category, why = Category.TRANSIENT, f"{why} (but the reply is temporary)"
    policy = table.categories[category]
    permanent = policy.permanent_default if temporary is None else not temporary
    if status is not None and status[0] == "2":
        permanent = False
    queue = policy.queue
    if category is Category.UNKNOWN:
        if code is None and status is None and not text and policy.queue_if_no_evidence:
            queue, permanent = policy.queue_if_no_evidence, False
        elif not permanent and policy.queue_if_temporary:
            queue = policy.queue_if_temporary
    return Classification(category, queue, policy.recipient_caused, permanent), why


def classify(reply_code: int | None, enhanced_status: str | None, diagnostic: str) -> Classification:
    """Decide category and queue from the reply code, enhanced status and reply text.

    When the caller has not split them out, a code and status leading the text ("550 5.1.1 ...")
    are used, so a raw SMTP reply can be passed as it came off the wire.
    """
    return explain(reply_code, enhanced_status, diagnostic)[0]
