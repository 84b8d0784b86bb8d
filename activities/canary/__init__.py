"""The canary operator's workers (all I/O): workloads, Services, Istio routes, metrics, hooks.

The worker registers :data:`ACTIVITIES`; the workflow names them (``canary.*``) and never
imports this package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.canary import alerts, events, git, lifecycle, metrics, slots, webhooks

#: Every canary activity, for the worker.
ACTIVITIES: list[Callable[..., Any]] = [
    lifecycle.initialize,
    lifecycle.start,
    lifecycle.set_weight,
    lifecycle.promote,
    lifecycle.finalise,
    lifecycle.rollback,
    metrics.analyse,
    webhooks.confirm_rollout_hooks,
    webhooks.confirm_traffic_increase_hooks,
    webhooks.confirm_promotion_hooks,
    webhooks.post_rollout_hooks,
    webhooks.notify,
    slots.request_slot,
    slots.grant,
    slots.closed_holders,
    events.record_event,
    alerts.send_alert,
    git.record_rollback,
]
