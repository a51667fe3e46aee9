"""What a relay's refusal says about our sending, and what the lane does about it.

A throttling reply cuts the lane's rate (and the message is tried once more on the lane); a
suspending one, once another message confirms it (`ThrottlePolicy.suspend_after`), closes the
lane for this run, holds everything it still has, and tells the caller so the suspension
outlasts the run: one message's refusal never stops a provider. Other refusals are about the
recipient or the message and are simply reported. Only the server's own reply is read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pipeline.delivery.lanes import MAX_TRIES_PER_MESSAGE, Feed, Lane, Pending
from pipeline.delivery.results import DEFERRED, REJECTED, Reporter, SendResult
from pipeline.delivery.session import held_result, redact_addresses
from pipeline.delivery.throttle import Feedback, ThrottlePolicy, feedback_for

log = logging.getLogger(__name__)


class Reactions:
    """Applies a provider's feedback to its lane: a throttled lane slows, a blocked one closes."""

    def __init__(
        self, pool_name: str, feed: Feed, reporter: Reporter, *, policy: ThrottlePolicy,
        on_suspend: Callable[[str, float, str], None] | None,
    ) -> None:
        self._pool_name = pool_name
        self._feed = feed
        self._reporter = reporter
        self._stats = reporter.stats
        self._policy = policy
        self._on_suspend = on_suspend

    def refused_for_us(self, lane: Lane, current: Pending, result: SendResult) -> bool:
        """Report a result, reacting to what it says about our sending first.

        A throttling 4xx cuts the lane's rate and the message is tried once more on this lane;
        a suspending reply closes the lane and the message is held. True: stop this connection.
        """
        feedback = Feedback.NONE
        if result.outcome in (REJECTED, DEFERRED) and result.reply_code is not None:
            feedback = feedback_for(result.reply_code, result.enhanced_status, result.server_reply)
        if self.react(lane, feedback, result.reply_text):
            self._reporter.report_for(lane.provider,
                                      held_result(current.item, lane.closed or result.reply_text))
            return True
        if (feedback is Feedback.THROTTLE and result.outcome == DEFERRED
                and current.tries + 1 < MAX_TRIES_PER_MESSAGE):
            lane.retry.append(Pending(current.item, current.tries + 1))
            return False
        self._reporter.report_for(lane.provider, result)
        return False

    def react(self, lane: Lane, feedback: Feedback, reason: str) -> bool:
        """Apply a provider's feedback to the lane; True when the lane is now suspended."""
        if feedback is Feedback.THROTTLE:
            if lane.limiter.throttled():
                cuts = self._stats.rate_cuts
                cuts[lane.provider] = cuts.get(lane.provider, 0) + 1
                log.warning("pool %s: %s throttles us; rate cut to %.2f/s", self._pool_name,
                            lane.provider, lane.limiter.rate)
            return False
        if feedback is Feedback.SUSPEND:
            lane.sender_refusals += 1
            if lane.sender_refusals < self._policy.suspend_after:
                log.warning("pool %s: %s refused one message for a reason about our sending; "
                            "suspending if another confirms it", self._pool_name, lane.provider)
                return False
            self._suspend(lane, reason)
            return True
        return False

    def _suspend(self, lane: Lane, reason: str) -> None:
        """No attempt to this provider from this pool until the suspension expires."""
        if lane.closed:
            return
        seconds = self._policy.suspend_seconds
        reason = redact_addresses(reason)  # it is stored and shown: no PHI
        lane.closed = f"{lane.provider} suspended on {self._pool_name} for {seconds:.0f}s: {reason}"
        self._stats.suspended[lane.provider] = reason
        log.warning("pool %s: %s refuses our mail; suspended for %.0fs", self._pool_name,
                    lane.provider, seconds)
        if self._on_suspend is not None:
            self._on_suspend(lane.provider, seconds, reason)
        while lane.retry:
            self._reporter.report_for(lane.provider,
                                      held_result(lane.retry.popleft().item, lane.closed))
        for item in self._feed.drain(lane.provider):
            self._reporter.report_for(lane.provider, held_result(item, lane.closed))
