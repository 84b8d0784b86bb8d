"""Connecting to Temporal the way every Autopilot process must.

One data converter (pydantic) for every client, and one place that registers our search
attributes on a server that lacks them, so ``autopilot list`` filters work on a dev server,
the time-skipping test server or a self-hosted cluster alike.
"""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client, TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.service import RPCError

from models.search_attributes import SEARCH_ATTRIBUTES

_INDEXED_TYPES = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    "Double": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    "Text": IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
}


async def connect(
    address: str,
    namespace: str = "default",
    *,
    api_key: str | None = None,
    tls: bool | TLSConfig = False,
    identity: str | None = None,
    runtime: Runtime | None = None,
) -> Client:
    """A client that speaks pydantic models, as every workflow and activity expects."""
    options: dict[str, object] = {}
    if identity:
        options["identity"] = identity
    if runtime is not None:
        options["runtime"] = runtime
    return await Client.connect(
        address,
        namespace=namespace,
        api_key=api_key,
        tls=tls or bool(api_key),
        data_converter=pydantic_data_converter,
        **options,  # type: ignore[arg-type]
    )


async def missing_search_attributes(client: Client) -> dict[str, str]:
    """Our search attributes the server does not know yet, with their types."""
    listing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    known = set(listing.custom_attributes) | set(listing.system_attributes)
    return {name: kind for name, kind in SEARCH_ATTRIBUTES.items() if name not in known}


async def register_search_attributes(client: Client) -> list[str]:
    """Add any missing search attribute; return the names added.

    Temporal Cloud refuses this call (attributes are managed in its console); the error
    then tells which ones to add there.
    """
    try:
        missing = await missing_search_attributes(client)
    except RPCError:
        missing = dict(SEARCH_ATTRIBUTES)
    if not missing:
        return []
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={name: _INDEXED_TYPES[kind] for name, kind in missing.items()},
            )
        )
    except RPCError as error:
        wanted = ", ".join(f"{n} ({k})" for n, k in missing.items())
        raise RuntimeError(
            f"could not register search attributes ({error.message}); add them to namespace "
            f"{client.namespace!r} yourself: {wanted}"
        ) from error
    return sorted(missing)
