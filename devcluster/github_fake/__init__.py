"""A FAKE GitHub for the GitOps tests and the local cluster; see ``server.py`` and docs/gitops.md.

GitHub is not reachable from here, so this stands in for it: the REST endpoints PyGithub
calls for Autopilot's pull requests, backed by a real bare git repository served over git's
smart HTTP (so Flux clones it as it would clone GitHub), and signed webhooks. It is named a
fake everywhere on purpose; tests validate everything it says against GitHub's official
OpenAPI descriptions (``openapi.py``).
"""
