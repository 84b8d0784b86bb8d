"""A canary worker in its own process, for tests that kill it (``kill -9``) mid-rollout.

Usage: ``python -m tests.canary.worker_process TEMPORAL_ADDRESS TASK_QUEUE``, with
``KUBECONFIG`` and ``PROMETHEUS_URL`` in the environment. Prints ``ready`` once polling.
"""

from __future__ import annotations

import asyncio
import sys

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.canary import ACTIVITIES
from worker_main import make_worker
from workflows.canary import CanaryWorkflow


async def main(address: str, task_queue: str) -> None:
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    async with make_worker(client, task_queue, [CanaryWorkflow], ACTIVITIES):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
