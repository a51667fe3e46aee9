"""The finance report's charts as inline SVG, drawn on the server with matplotlib.

SVG with text kept as text (`svg.fonttype='none'`) and no scripts, so the page works offline, in
an email attachment and when printed; each chart is a pure function of the figures.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

from pipeline.report.figures import AGE_BUCKETS, Figures, money

PALETTE = {"email": "#2b6cb0", "paper": "#c05621", "in progress": "#718096", "not sent": "#a0aec0"}
LINES = ["#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#718096", "#d69e2e"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False,
                                "axes.spines.right": False, "svg.hashsalt": "eob-finance"})
    import matplotlib.pyplot as plt

    return plt


def _svg(draw: Callable[[Any], None], title: str, size: tuple[float, float] = (6.4, 2.8)) -> str:
    """One figure drawn by `draw(ax)`, as an <svg> element with a title for screen readers."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=size)
    try:
        draw(ax)
        ax.set_title(title, loc="left", fontsize=10, fontweight="bold")
        fig.tight_layout()
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    finally:
        plt.close(fig)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<svg ", f'<svg role="img" aria-label="{title}" ', svg, count=1)
    return svg


def channel_mix(f: Figures) -> str:
    totals = {name: n for name, n in f.by_channel().items() if n}

    def draw(ax: Any) -> None:
        names = list(totals) or ["none"]
        values = list(totals.values()) or [0]
        bars = ax.barh(names, values, color=[PALETTE.get(n, "#718096") for n in names])
        ax.bar_label(bars, labels=[f"{v:,}" for v in values], padding=3)
        ax.invert_yaxis()
        ax.set_xlabel("statements")

    return _svg(draw, "How statements left: channel mix", (6.4, 2.2))


def cost_vs_paper(f: Figures) -> str:
    email, paper = f.cost_micros("email"), f.cost_micros("paper")

    def draw(ax: Any) -> None:
        ax.bar(["actual"], [float(money(email))], color=PALETTE["email"], label="email")
        ax.bar(["actual"], [float(money(paper))], bottom=[float(money(email))], color=PALETTE["paper"],
               label="paper")
        ax.bar(["all on paper"], [float(money(f.all_paper_micros()))], color="#e2e8f0",
               edgecolor=PALETTE["paper"], label="all-paper estimate")
        ax.set_ylabel("US dollars")
        ax.legend(frameon=False, fontsize=8)
        for x, value in ((0, email + paper), (1, f.all_paper_micros())):
            ax.annotate(f"${money(value):,}", (x, float(money(value))), ha="center", va="bottom")

    return _svg(draw, "Cost by channel against all-paper")


def rates_over_time(f: Figures, group: str) -> str:
    """Daily bounce rate per pool or provider, with the review thresholds drawn as lines."""
    rows = [row for row in f.email_daily if row["group"] == group]
    names = sorted({row["name"] for row in rows})

    def draw(ax: Any) -> None:
        for index, name in enumerate(names):
            points = [(row["day"][5:], row["bounce_rate"] * 100) for row in rows
                      if row["name"] == name and row["messages"]]
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                        color=LINES[index % len(LINES)], label=name)
        ax.axhline(f.thresholds.bounce_rate * 100, color="#c53030", linestyle="--",
                   label=f"bounce review {f.thresholds.bounce_rate:.1%}")
        ax.axhline(f.thresholds.complaint_rate * 100, color="#dd6b20", linestyle=":",
                   label=f"complaint review {f.thresholds.complaint_rate:.1%}")
        ax.set_ylabel("% of messages")
        ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))

    return _svg(draw, f"Bounce rate by {group}, per day", (7.2, 2.8))


def queue_ageing(f: Figures) -> str:
    queues = ["retry", "verification", "paper"]

    def draw(ax: Any) -> None:
        left = [0] * len(queues)
        for index, bucket in enumerate(AGE_BUCKETS):
            values = [sum(row["statements"] for row in f.queues
                          if row["queue"] == q and row["age_bucket"] == bucket) for q in queues]
            ax.barh(queues, values, left=left, color=LINES[index], label=f"{bucket} days")
            left = [a + b for a, b in zip(left, values, strict=True)]
        ax.invert_yaxis()
        ax.set_xlabel("statements waiting")
        ax.legend(frameon=False, fontsize=7, ncols=4, loc="lower right")

    return _svg(draw, "Queues by days waiting", (6.4, 2.2))


def deadline_risk(f: Figures) -> str:
    warn = f.thresholds.deadline_warn_days
    buckets = {"past": 0, "≤ 1 day": 0, f"≤ {warn} days": 0, "later": 0}
    for row in f.deadline:
        days = row["days_left"]
        key = ("past" if days < 0 else "≤ 1 day" if days <= 1 else f"≤ {warn} days" if days <= warn
               else "later")
        buckets[key] += row["unsettled"]

    def draw(ax: Any) -> None:
        bars = ax.bar(list(buckets), list(buckets.values()),
                      color=["#c53030", "#dd6b20", "#d69e2e", "#a0aec0"])
        ax.bar_label(bars, labels=[f"{v:,}" for v in buckets.values()])
        ax.set_ylabel("statements not settled")

    return _svg(draw, "Deadline risk: unsettled statements by time left", (6.4, 2.4))


def all_charts(f: Figures) -> dict[str, str]:
    return {"channel_mix": channel_mix(f), "cost": cost_vs_paper(f),
            "bounce_provider": rates_over_time(f, "provider"), "bounce_pool": rates_over_time(f, "pool"),
            "queues": queue_ageing(f), "deadline": deadline_risk(f)}
