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
from temporalio.service import RetryConfig, RPCError

from models.search_attributes import SEARCH_ATTRIBUTES

_INDEXED_TYPES = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    "Double": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    "Text": IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
}


#: The client's own (core) retries stay short and bounded: callers keep the retry loops they
#: reason about (the watchers' :class:`~watchers.delivery.Delivery`, Temporal's retries of
#: an activity, the CLI's exit code 5) instead of hanging inside one call.
CORE_RETRY = RetryConfig(
    initial_interval_millis=100,
    max_interval_millis=1000,
    max_elapsed_time_millis=2000,
    max_retries=2,
)


async def connect(
    address: str,
    namespace: str = "default",
    *,
    api_key: str | None = None,
    tls: bool | TLSConfig = False,
    identity: str | None = None,
    runtime: Runtime | None = None,
    lazy: bool = False,
) -> Client:
    """The one way every Autopilot process connects: pydantic payloads, short core retries.

    Args:
        address: ``host:port`` of the Temporal frontend.
        namespace: the Temporal namespace the operators run in.
        api_key: a Temporal Cloud API key (turns TLS on).
        tls: TLS on, or its configuration.
        identity: how this client shows up in workflow histories; defaults to the SDK's.
        runtime: the SDK runtime (the CLI passes one whose core logs stay quiet).
        lazy: connect on first use instead of now, so a process can start while Temporal
            is still coming up.
    """
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
        retry_config=CORE_RETRY,
        lazy=lazy,
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
