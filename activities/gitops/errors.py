"""GitHub failures as activity errors that cannot carry the token.

Why a wrapper: a PyGithub exception holds the response's headers and body, and a
``requests`` error its URL and sometimes its request; Temporal records an activity's error
(message, details, cause chain) in the workflow's history for good. So every failure is
rebuilt from its status and GitHub's own ``message`` only, scrubbed of the token for good
measure, and raised ``from None`` so no original exception rides along as the cause.
"""

from __future__ import annotations

from github import GithubException
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError

from activities.errors import non_retryable

#: The type of a GitHub failure that a later attempt may not see (5xx, rate limit, network).
GITHUB_UNAVAILABLE = "GitHubUnavailable"
#: Statuses no retry fixes: bad request, bad credentials, no permission, gone, invalid.
_FINAL = {400, 401, 403, 404, 410, 422}
MAX_MESSAGE = 500


def scrub(text: str, token: SecretStr | None) -> str:
    """``text`` with the token (and any long prefix of it) replaced by ``***``."""
    if token is None:
        return text
    secret = token.get_secret_value()
    if secret:
        text = text.replace(secret, "***")
        if len(secret) >= 16:
            text = text.replace(secret[:12], "***")
    return text


def _github_message(error: GithubException) -> str:
    data = error.data
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        message: str = data["message"]
        details = data.get("errors")
        if isinstance(details, list):
            said = [d.get("message") or d.get("code") for d in details if isinstance(d, dict)]
            message += "".join(f"; {text}" for text in said if isinstance(text, str))
        return message
    return "no message"


def github_failure(error: Exception, doing: str, token: SecretStr | None) -> ApplicationError:
    """The activity error for ``error`` raised while ``doing`` (raise it ``from None``)."""
    if isinstance(error, GithubException):
        message = _github_message(error)
        text = scrub(f"GitHub answered {error.status} while {doing}: {message}", token)
        text = text[:MAX_MESSAGE]
        rate_limited = error.status in (403, 429) and "rate limit" in message.lower()
        if error.status in _FINAL and not rate_limited:
            return non_retryable(text)
        return ApplicationError(text, type=GITHUB_UNAVAILABLE)
    text = scrub(f"GitHub could not be reached while {doing}: {type(error).__name__}", token)
    return ApplicationError(text[:MAX_MESSAGE], type=GITHUB_UNAVAILABLE)
