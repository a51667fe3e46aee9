"""'Name: value' field groups of the machine-readable parts of a report
(message/delivery-status, message/feedback-report), whether MIME parsed them or not."""

from __future__ import annotations

import re
from email.message import Message

from pipeline.reconcile.bounces.mime import decode

FIELD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)\s*:\s*(.*)$")


def field_groups(part: Message) -> list[list[tuple[str, str]]]:
    """Field groups of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = [p for p in payload if isinstance(p, Message)]
        groups = [[(k.lower(), " ".join(str(v).split())) for k, v in p.items()] for p in blocks]
        body = "".join(str(p.get_payload()) for p in blocks if isinstance(p.get_payload(), str))
        if body.strip():
            groups.extend(field_groups_from_text(body))
        return groups
    return field_groups_from_text(decode(part))


def field_groups_from_text(text: str) -> list[list[tuple[str, str]]]:
    """'Name: value' groups separated by blank lines, with folded lines unfolded."""
    groups: list[list[tuple[str, str]]] = [[]]
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line.strip():
            if groups[-1]:
                groups.append([])
            continue
        if line[0] in " \t" and groups[-1]:
            name, value = groups[-1][-1]
            groups[-1][-1] = (name, f"{value} {line.strip()}")
            continue
        m = FIELD_RE.match(line.strip())
        if m:
            groups[-1].append((m.group(1).lower(), m.group(2).strip()))
    return [g for g in groups if g]
