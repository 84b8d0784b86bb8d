"""The operator engine: declare a state machine, get one durable workflow per target.

Public surface (everything an operator file needs)::

    from workflows.engine import (
        Operator, ActivityRef, Command, Event, Timeout, ActivityFailed, Ctx, ANY,
        OperatorWorkflow,
    )
"""

from workflows.engine.definition import (
    ANY,
    ActivityFailed,
    ActivityRef,
    Command,
    Ctx,
    DefinitionError,
    Event,
    Occasion,
    Operator,
    Timeout,
)
from workflows.engine.runtime import OperatorWorkflow

__all__ = [
    "ANY",
    "ActivityFailed",
    "ActivityRef",
    "Command",
    "Ctx",
    "DefinitionError",
    "Event",
    "Occasion",
    "Operator",
    "OperatorWorkflow",
    "Timeout",
]
