"""The relay's spec and data, the same in both builds (``relay_v1``, ``relay_v2``): only the
machine changes between them, as between two releases of one operator."""

from pydantic import BaseModel


class RelaySpec(BaseModel):
    pass


class RelayData(BaseModel):
    version: str = ""
