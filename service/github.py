"""The one GitHub client factory, and the one place the token is read.

Why here, beside :mod:`service.kube`: the GitOps workers (and later the CLI) must agree on
which GitHub, which repository and which credentials. The token is read at each use from
a file or a Kubernetes Secret (so a rotated token is picked up without a restart) and
handed to PyGithub only; it never enters a log line, an error message or a workflow's
history. PyGithub's own retries are off: the activity is retried by Temporal instead, with
the engine's policy, so one failing call is not multiplied twice.
"""

from __future__ import annotations

import base64
import binascii

from github import Auth, Github
from pydantic import SecretStr

from service.settings import GitOpsSettings, KubernetesSettings

USER_AGENT = "autopilot-gitops"


class GitHubNotConfigured(RuntimeError):
    """No repository or no token source is configured, or the token cannot be read.

    The message names the setting and the file or Secret, never the token.
    """


def read_token(settings: GitOpsSettings, kubernetes: KubernetesSettings | None = None) -> SecretStr:
    """The token: ``token_file`` if set, else the key of ``token_secret``.

    Raises:
        GitHubNotConfigured: Neither is set, or the file or Secret cannot be read.
    """
    if settings.token_file is not None:
        try:
            text = settings.token_file.read_text().strip()
        except OSError as error:
            raise GitHubNotConfigured(
                f"cannot read the GitHub token file {settings.token_file}: {error.strerror}"
            ) from None
        if not text:
            raise GitHubNotConfigured(f"the GitHub token file {settings.token_file} is empty")
        return SecretStr(text)
    if settings.token_secret is not None:
        return SecretStr(_secret_value(settings, kubernetes))
    raise GitHubNotConfigured(
        "no GitHub token: set AUTOPILOT_GITOPS_TOKEN_FILE or AUTOPILOT_GITOPS_TOKEN_SECRET"
    )


def _secret_value(settings: GitOpsSettings, kubernetes: KubernetesSettings | None) -> str:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from service.kube import api_client

    name = settings.token_secret or ""
    where = f"Secret {settings.token_secret_namespace}/{name}"
    try:
        with api_client(kubernetes) as api:
            secret = client.CoreV1Api(api).read_namespaced_secret(
                name, settings.token_secret_namespace
            )
    except ApiException as error:
        raise GitHubNotConfigured(
            f"cannot read the GitHub token from {where}: {error.status} {error.reason}"
        ) from None
    encoded = (secret.data or {}).get(settings.token_secret_key)
    if not encoded:
        raise GitHubNotConfigured(f"{where} has no key {settings.token_secret_key!r}")
    try:
        return base64.b64decode(encoded).decode().strip()
    except (binascii.Error, UnicodeDecodeError):
        raise GitHubNotConfigured(
            f"{where}: key {settings.token_secret_key!r} is not text"
        ) from None


def credentials(
    settings: GitOpsSettings, kubernetes: KubernetesSettings | None = None
) -> tuple[Auth.Auth, SecretStr]:
    """How to authenticate, and the secret to keep out of every message.

    With ``app_id``: as the App's installation (PyGithub trades a JWT signed with the App's
    key for an installation token, and renews it); the secret is the private key. Else the
    token (:func:`read_token`).

    Raises:
        GitHubNotConfigured: A setting is missing or a file or Secret cannot be read.
    """
    if settings.app_id is None:
        token = read_token(settings, kubernetes)
        return Auth.Token(token.get_secret_value()), token
    if settings.app_installation_id is None or settings.app_private_key_file is None:
        raise GitHubNotConfigured(
            "GitHub App authentication needs AUTOPILOT_GITOPS_APP_INSTALLATION_ID and "
            "AUTOPILOT_GITOPS_APP_PRIVATE_KEY_FILE"
        )
    try:
        key = settings.app_private_key_file.read_text()
    except OSError as error:
        raise GitHubNotConfigured(
            f"cannot read the GitHub App key {settings.app_private_key_file}: {error.strerror}"
        ) from None
    app = Auth.AppAuth(settings.app_id, key)
    return app.get_installation_auth(settings.app_installation_id), SecretStr(key)


def github_client(settings: GitOpsSettings, auth: Auth.Auth) -> Github:
    """A PyGithub client for ``settings.api_url`` (GitHub or GitHub Enterprise)."""
    return Github(
        base_url=settings.api_url.rstrip("/"),
        auth=auth,
        timeout=int(settings.timeout_s),
        user_agent=USER_AGENT,
        retry=None,
        lazy=True,
    )
