"""What must hold for every run of the model test, each time it has settled.

Three properties, from issue 9: a run still running waits for something (a worker, a
timer, a human); every command the validator accepted gets an outcome; status and
history tell the same story. :func:`problems` lists every way one observation breaks
them, in words a failing example can be read by.
"""

from __future__ import annotations

from models.operator import CommandReceipt, EngineSettings
from tests.model.world import Observation, Run


def problems(run: Run, seen: Observation, receipts: dict[str, CommandReceipt | str]) -> list[str]:
    """Everything wrong with one settled run (empty when the engine behaved)."""
    found: list[str] = []
    status = seen.status
    if seen.failure is not None:
        found.append(seen.failure)
    if status is None:
        return found
    waiting = ", ".join(f"{c.name} (#{c.activity_id})" for c in seen.waiting)
    if seen.running:
        if status.final and not seen.waiting:
            found.append(f"still running in final state {status.state} with nothing left to run")
        waits_for_human = status.settled or status.paused
        retryable = status.error is not None and "retry" in status.accepted_commands
        if (
            not status.final
            and not seen.waiting
            and status.timer_due is None
            and not waits_for_human
            and not retryable
        ):
            found.append(
                f"waits for nothing in {status.state}: no worker, no timer, not settled, "
                f"not paused, no error to retry"
            )
    elif not status.final:
        found.append(f"completed in {status.state}, which is not a final state")

    accepted = seen.updates("accepted")
    completed = seen.updates("completed")
    outstanding = sorted(set(run.accepted) - completed)
    if outstanding and (not seen.running or not seen.waiting):
        named = ", ".join(f"{run.accepted[u]} ({u})" for u in outstanding)
        where = "the run has ended" if not seen.running else "nothing is left to run"
        found.append(f"accepted commands without an outcome although {where}: {named}")
    if accepted != set(run.accepted):
        found.append(
            f"history accepted updates {sorted(accepted)}, the validator accepted "
            f"{sorted(run.accepted)}"
        )
    if not completed <= accepted:
        found.append(f"updates completed without being accepted: {sorted(completed - accepted)}")

    published = seen.published("AutopilotState")
    if published != status.state:
        found.append(f"status says {status.state}, the AutopilotState attribute {published}")
    paused = seen.published("AutopilotPaused")
    if paused is not None and paused != status.paused:
        found.append(f"status says paused={status.paused}, the AutopilotPaused attribute {paused}")
    if status.transitions and status.transitions[-1].target != status.state:
        last = status.transitions[-1]
        found.append(f"status is in {status.state}, its last transition went to {last.target}")

    for update_id, receipt in receipts.items():
        if isinstance(receipt, CommandReceipt):
            found += receipt_problems(update_id, receipt, run.accepted[update_id])
    # The command log belongs to the current machine (a fresh one starts it empty).
    mine = seen.updates("completed", seen.machine_histories())
    answered = [r for u, r in receipts.items() if u in mine]
    applied = sum(1 for r in answered if isinstance(r, CommandReceipt) and r.applied)
    logged = len(status.commands)
    if len(mine) < EngineSettings().keep_records and not applied <= logged <= len(mine):
        found.append(
            f"the command log has {logged} entries for {len(mine)} answered commands "
            f"({applied} applied)"
        )
    # Fields that newer engines add are checked where they exist.
    for record in status.commands:
        if "outcome" in type(record).model_fields and getattr(record, "outcome", None) is None:
            found.append(f"command {record.command} at {record.at} has no outcome in status")
    waiting_for = getattr(status, "waiting_for", None)  # empty once final, by definition
    if seen.running and not status.final and waiting_for is not None and not waiting_for:
        found.append(f"status says it waits for nothing in {status.state} while running")
    if found and seen.waiting:
        found.append(f"(waiting workers: {waiting})")
    return found


def receipt_problems(update_id: str, receipt: CommandReceipt, command: str) -> list[str]:
    """What is wrong with the answer to one command (its outcome, where the engine says)."""
    found = []
    if receipt.command != command:
        found.append(f"update {update_id} for {command} answered for {receipt.command}")
    outcome = getattr(receipt, "outcome", None)
    if outcome is not None and (outcome == "applied") != receipt.applied:
        found.append(f"{command} ({update_id}) answered {outcome} but applied={receipt.applied}")
    if outcome not in (None, "applied") and not getattr(receipt, "detail", "x"):
        found.append(f"{command} ({update_id}) answered {outcome} without saying why")
    return found
