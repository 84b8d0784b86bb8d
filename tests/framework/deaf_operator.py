"""An operator whose sense sends an event no transition handles: the worker must refuse it.

Importing this module raises the definition error (``.check()`` runs at import, as in every
operator module), which is what the worker reports when it loads it.
"""

from pydantic import BaseModel

from models.events import Event
from models.senses import Webhook
from workflows.engine import Command, Operator


class DeafSpec(BaseModel):
    pass


class DeafData(BaseModel):
    pass


class Knock(Event):
    """Declared as sent by the webhook sense, handled by nothing."""


deaf = Operator(
    "deaf",
    spec=DeafSpec,
    data=DeafData,
    initial="Waiting",
    senses=[Webhook(sends=(Knock,))],
)
deaf.state("Waiting", settled=True)
deaf.state("Done", final=True)
deaf.on("Waiting", Command("finish"), go="Done")
deaf.check()
