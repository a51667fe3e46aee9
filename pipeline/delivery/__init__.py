"""Delivery: statements out by email through the IP pools, within every limit that protects them.

What other parts of the pipeline use: the pool model (``send_config``) and its start-up checks
(``check_pool_can_connect``, ``probe_relay``), the message and its
VERP return path, the per-pool sender (``send_pool``) and its results, the operator controls
and warm-up quota that shape a run, pool health holds, and the suppression list.
"""

from pipeline.delivery.controls import (
    SUSPEND,
    ControlError,
    active_pauses,
    add_usage,
    load_throttle,
    pause,
    paused_providers,
    provider_counts,
    resume,
    route_weights,
    save_throttle,
    warmup_status,
)
from pipeline.delivery.dkim import load_signer
from pipeline.delivery.message import build_message, render_email
from pipeline.delivery.pool_health import HoldPolicy, current_holds
from pipeline.delivery.pools import (
    PoolConfig,
    PoolConfigError,
    RelayCredentials,
    SendConfig,
    ca_file_for,
    capacities,
    choose_pool,
    pick_pool,
    send_config,
)
from pipeline.delivery.preflight import (
    CaBundleUnusable,
    RelayProbe,
    SourceAddressNotLocal,
    check_pool_can_connect,
    probe_relay,
)
from pipeline.delivery.results import ACCEPTED, DEFERRED, HELD, REJECTED, Outgoing, SendResult, SendStats
from pipeline.delivery.sender import SendControls, provider_lookup, send_pool, send_pool_async
from pipeline.delivery.session import make_tls_context
from pipeline.delivery.suppression import SuppressionError, address_hash, entry, is_suppressed, lift, suppress
from pipeline.delivery.verp import ForgedToken, return_path, verify_token
from pipeline.delivery.warmup import Quota

__all__ = [
    "ACCEPTED", "DEFERRED", "HELD", "REJECTED", "SUSPEND",
    "CaBundleUnusable", "ControlError", "ForgedToken", "HoldPolicy", "Outgoing", "PoolConfig",
    "PoolConfigError", "Quota", "RelayCredentials", "RelayProbe", "SendConfig", "SendControls",
    "SendResult", "SendStats", "SourceAddressNotLocal", "SuppressionError",
    "active_pauses", "add_usage", "address_hash", "build_message", "ca_file_for", "capacities",
    "check_pool_can_connect", "choose_pool", "current_holds", "entry", "is_suppressed", "lift",
    "load_signer", "load_throttle", "make_tls_context", "pause", "paused_providers", "pick_pool",
    "probe_relay", "provider_counts", "provider_lookup", "render_email", "resume", "return_path",
    "route_weights", "save_throttle", "send_config", "send_pool", "send_pool_async", "suppress",
    "verify_token", "warmup_status",
]
