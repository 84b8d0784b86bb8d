"""The canary operator: progressive delivery on Istio as one durable state machine per Deployment.

Read in this order: ``workers.py`` (the activities each state runs, by name), ``gates.py``
(the three gates in one table), ``guards.py`` and ``effects.py`` (small pure functions, each
typed by the event it handles), then ``machine.py``: the states, then the transitions
grouped by state, then the workflow; ``replay.py`` keeps what recorded histories need.
``details.py`` is what the Temporal UI shows. The life of a rollout::

    Initializing ─▶ Waiting (gate) ─▶ Starting ─▶ Progressing ⇄ Analysing ─▶ AwaitingPromotion
                                                   │   ▲            │                 │
                                                   │   └─ AwaitingStep (gate)         ▼
                                                   ▼                      Promoting ─▶ Finalising
                                              RollingBack ─▶ Failed                    │
                                                      (retry, new revision)      Succeeded ◀┘

Between ``Initializing`` and the first of Waiting, Starting or Promoting, ``Queued`` waits
for the permits of the concurrency cap (``workflows/rollout_slots.py``); with no cap
configured it passes at once.

``Progressing`` writes the weight of the current step to the VirtualService and waits one
``analysis.interval``; ``Analysing`` runs the hooks and metric checks and decides: next step,
same step again (a failed check below ``threshold``, or no data being held), rollback, a
gate, or promotion. Every wait is a durable timer and every decision is recorded, so a
worker crash or a server restart loses nothing. Pause and resume are the engine's.

Guards and effects are pure (no I/O, no clock but ``ctx.now``); the workers run in
``activities/canary`` and are named here, never imported.
"""

from workflows.canary.machine import CanaryWorkflow, canary

__all__ = ["CanaryWorkflow", "canary"]
