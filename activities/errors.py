"""The one way an activity says "retrying will not help".

The engine's retry policy names :data:`models.errors.NON_RETRYABLE`, so a failure of that
type reaches the state machine as ``ActivityFailed`` at once instead of after every attempt.
"""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from models.errors import NON_RETRYABLE


def non_retryable(message: str) -> ApplicationError:
    """An error no retry can fix (raise it; the message is what the user will read)."""
    return ApplicationError(message, type=NON_RETRYABLE, non_retryable=True)
