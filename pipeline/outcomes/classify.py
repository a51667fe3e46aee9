"""Classify one delivery failure into a category and the queue that handles it.

One classifier serves both SMTP replies at send time and asynchronous bounces, so a statement
is routed the same way whichever path reported the failure. The decisions live in one table,
`pipeline/outcomes/bounce_rules.toml`, that a compliance reviewer can read without Python; this
module only loads it and applies it in order (first matching rule wins).

The order of the table follows how bounce classifiers in the field decide reasons, specific
before general (what was adopted, and from where, is in docs/reconcile.md):
1. a 2.x.x status is a success, whatever the text says;
2. codes nobody uses loosely: mailbox full (x.2.2), message too big (x.2.3, x.3.4);
   then the reporting MTA's own verdicts: the fixed wordings and tokens particular mail server
   software writes for a reason (qmail, Exim, Exchange, OpenSMTPD, Facebook, ...);
3. phrases that hold whatever code the server chose (servers reuse 5.1.1 or 5.7.1 for
   everything): our IP or sender refused, rate limits, a full mailbox, failed authentication,
   a disabled mailbox, a local delivery program failing;
4. unambiguous status codes (5.1.1, 5.1.2, 5.2.1, 5.4.4, 5.7.x authentication codes, ...);
5. phrases per reason for vague codes (x.0.0, 5.7.1, none at all): size, spam/virus, content,
   policy, a DNS error said as temporary, unknown domain, unknown user, full, blocked, expired,
   system and network errors; after each reason's general phrases, the MTA wordings for it
   that a quoted remote reply may accompany, so they never overrule what the reply said;
6. the structure of the failure: the SMTP stage it happened at (refused at the greeting or
   HELO: our host; at MAIL FROM: our sender);
7. the status class: x.1 address, x.2 mailbox, x.3/x.4/x.5 system, network and protocol
   (transient), x.7 security (our side), any other 4.x.x / 4xx (transient);
8. what is still unknown is routed by its status class: temporary → retry, permanent or no
   code → verification (never a blind resend); no sign of failure at all → ignore.

Safety rules that are code, not data (documented at the top of the table too):
- a recipient-caused category (the address or its domain does not exist, the mailbox is
  disabled) goes to verification whatever its status class, never to retry: a temporary code
  with "user unknown" is still an address nobody should resend to blindly;
- a refusal before any recipient was named (greeting, HELO/EHLO, MAIL FROM) is never
  recipient-caused: it is BLOCKED (our host or sender), whatever words it used;
- UNKNOWN goes to verification when the failure is permanent (never resend blindly), to retry
  when temporary, and is ignored only when there is no sign of failure at all.

Each rule may name the messages that motivated it (`seen_in`); `RuleTable.without` drops the
rules that only some messages motivated, so a benchmark can measure those messages with rules
written from the others (`bench/bounces.py`, cross-validation).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

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
STAGE_RE = re.compile(
    r"(?:\b(?:in reply to|after|during|at|response to|did not like our|error following)|>>>) (?:the )?(?:"
    r"(?P<rcpt>rcpt\b)|(?P<data>(?:end of )?data\b)|(?P<mail>mail from)|(?P<helo>(?:eh|he)lo\b)"
    r"|(?P<connect>(?:smtp )?greeting|initial connection))"
    r"|(?P<mail_>sender was rejected|\(state 6\))|(?P<helo_>my name was rejected|\(state 13\))"
    r"|(?P<rcpt_>rcpt to generated following response|\(state 14\))"
    r"|(?P<data_>failed on data command|failed after i sent the message|data command generated response"
    r"|\(state 1[578]\))"
    r"|(?P<connect_>refused to talk to me|connection (?:was )?(?:refused|rejected) by|but greeting failed"
    r"|unexpected connection response)"
)
"""Where in the SMTP dialogue the server refused ("in reply to RCPT TO command", ">>> DATA",
"after MAIL FROM", "refused to talk to me"), including the fixed wordings of particular mail
servers ("did not like our MAIL FROM" DragonFly, "Server response to MAIL FROM" IMail, "but
greeting failed" qmail, "(state 13)" Gmail). The last one named is the failing one."""
STAGES = frozenset({"connect", "helo", "mail", "rcpt", "data", "local"})
"""`local`: a program on the receiving host (a pipe, procmail) failed, not the SMTP dialogue."""
BEFORE_RCPT = frozenset({"connect", "helo", "mail"})
"""Stages before any recipient was named: a refusal there is not about the recipient's address."""


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
    RECIPIENT_REFUSED = "recipient_refused"
    RELAY_DENIED = "relay_denied"
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
    during: frozenset[str] | None = None  # SMTP stages (STAGES) the refusal happened at
    seen_in: frozenset[str] = frozenset()  # messages that motivated the rule; empty: general

    def matches(self, reply_code: int | None, status: str | None, text: str) -> bool:
        if self.status is not None and (status is None or not self.status.fullmatch(status)):
            return False
        if self.reply is not None and (reply_code is None or not self.reply.fullmatch(str(reply_code))):
            return False
        return self.text is None or self.text.search(text) is not None


CONTENT_CATEGORIES = frozenset({Category.SPAM_OR_VIRUS, Category.CONTENT_REJECTED, Category.POLICY})
"""Verdicts on a message's content, which a server refusing before RCPT has not seen: there they
are about our host or sender (a size refusal at MAIL FROM is real: the SIZE= parameter)."""


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

    def without(self, messages: Collection[str]) -> RuleTable:
        """The table as if `messages` had never been seen: rules that only they motivated are
        dropped (a rule also motivated by another message, or by no message, stays)."""
        held_out = set(messages)
        kept = tuple(r for r in self.rules if not r.seen_in or not r.seen_in <= held_out)
        return replace(self, rules=kept)


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
    return table_from(tomllib.loads(path.read_text(encoding="utf-8")))


def table_from(data: dict[str, Any]) -> RuleTable:
    """The table from its parsed TOML (`load_rules`; the benchmark builds variants of it)."""
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
    for name, policy in categories.items():
        if policy.recipient_caused and policy.queue is not Queue.VERIFY:
            raise ValueError(f"bounce rules: {name} is recipient-caused: its queue must be verify")
    rules: list[Rule] = []
    for i, spec in enumerate(data["rule"]):
        rules.extend(_rules_of(i, spec))
    return RuleTable(rules=tuple(rules), categories=categories)


def _rules_of(i: int, spec: dict[str, Any]) -> list[Rule]:
    """One [[rule]] of the table; phrases with their own seen_in become rules of their own,
    right after it (same category and conditions, so first-match decisions do not change)."""
    if not ({"status", "reply", "text", "during"} & spec.keys()):
        raise ValueError(f"bounce rules: rule {i} has no condition")
    during = frozenset(spec["during"]) if "during" in spec else None
    if during is not None and not during <= STAGES:
        raise ValueError(f"bounce rules: rule {i}: unknown stage in {sorted(during - STAGES)}")
    phrases = _lower_case_phrases(i, spec["text"]) if "text" in spec else None
    seen = spec.get("seen_in", [])
    per_phrase: dict[str, list[str]] = seen if isinstance(seen, dict) else {}
    if per_phrase and (phrases is None or set(per_phrase) - set(phrases)):
        raise ValueError(f"bounce rules: rule {i}: seen_in names a phrase the rule does not have")

    def rule(text: list[str] | None, motivated_by: list[str]) -> Rule:
        return Rule(
            category=Category(spec["category"]),
            why=spec.get("why", ""),
            status=_any_of(spec["status"], translate_glob=True) if "status" in spec else None,
            reply=_any_of(spec["reply"], translate_glob=True) if "reply" in spec else None,
            text=_any_of(text) if text is not None else None,
            during=during,
            seen_in=frozenset(motivated_by),
        )

    if not per_phrase:
        return [rule(phrases, list(seen))]
    general = [p for p in phrases or [] if p not in per_phrase]
    out = [rule(general, [])] if general else []
    return out + [rule([p], per_phrase[p]) for p in phrases or [] if p in per_phrase]


@lru_cache(maxsize=1)
def rule_table() -> RuleTable:
    """The table shipped with the package, loaded once per process."""
    return load_rules()


_IN_FORCE: list[RuleTable] = []


@contextmanager
def rules_in_force(table: RuleTable) -> Iterator[RuleTable]:
    """Classify with another table inside the block (evaluation only: cross-validation measures
    messages with the rules written without them). Production code never calls this."""
    _IN_FORCE.append(table)
    try:
        yield table
    finally:
        _IN_FORCE.pop()


def _table() -> RuleTable:
    return _IN_FORCE[-1] if _IN_FORCE else rule_table()


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
    # "<user@x>" becomes "<>", as a bare address does: rules are written for "<>" alone
    text = ADDRESS_RE.sub("<>", text).replace("<<>>", "<>").replace("<<<", " ").replace(">>>", " ")
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


def smtp_stage(text: str) -> str | None:
    """The SMTP stage a reply text says the refusal happened at (the last one it names)."""
    stage = None
    for m in STAGE_RE.finditer(text):
        stage = m.lastgroup
    return stage.rstrip("_") if stage else None


class _Stage:
    """The SMTP stage of one reply, read from its text only when a rule or check needs it."""

    __slots__ = ("_text", "_value", "_known")

    def __init__(self, text: str, during: str | None) -> None:
        self._text, self._value, self._known = text, during, during is not None

    @property
    def value(self) -> str | None:
        if not self._known:
            self._value, self._known = smtp_stage(self._text), True
        return self._value


def _first_rule(
    table: RuleTable, code: int | None, status: str | None, text: str, stage: _Stage
) -> Rule | None:
    for rule in table.rules:
        if rule.during is not None and stage.value not in rule.during:
            continue
        if rule.matches(code, status, text):
            return rule
    return None


def explain(
    reply_code: int | None, enhanced_status: str | None, diagnostic: str, *, during: str | None = None
) -> tuple[Classification, str]:
    """classify() plus the reason text of the rule that decided, for audit trails."""
    table = _table()
    code, status = _reply_codes(reply_code, enhanced_status, diagnostic)
    text = _reply_text(diagnostic)
    stage = _Stage(text, during)
    rule = _first_rule(table, code, status, text, stage)
    category = rule.category if rule else Category.UNKNOWN
    why = rule.why if rule else "no rule matched"
    if (table.categories[category].recipient_caused
            or category in CONTENT_CATEGORIES) and stage.value in BEFORE_RCPT:
        # no recipient and no content had been sent yet: the refusal was of our host or sender
        category, why = Category.BLOCKED, f"{why}, but refused at {stage.value}, before any recipient"
    temporary = _temporary(code, status)
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


def classify(
    reply_code: int | None, enhanced_status: str | None, diagnostic: str, *, during: str | None = None
) -> Classification:
    """Decide category and queue from the reply code, enhanced status and reply text.

    When the caller has not split them out, a code and status leading the text ("550 5.1.1 ...")
    are used, so a raw SMTP reply can be passed as it came off the wire. `during` is the SMTP
    stage (`STAGES`) when the caller knows it; otherwise the text is read for it.
    """
    return explain(reply_code, enhanced_status, diagnostic, during=during)[0]
