"""The ``MetricTemplate`` resource: a PromQL query shared by many canaries, as in Flagger.

Why a resource: a platform team writes a query once (an error rate over its own labels, a
latency from its ingress) and every team's ``Canary`` names it with
``metrics[].templateRef: {name, namespace}``. It is read at **each analysis**, so an edited
template applies at the next interval, and rendered by the one PromQL module
(:mod:`models.promql`: ``{{ namespace }}``, ``{{ target }}``, ``{{ interval }}``, ...), the
same way as an inline query.

Only ``provider.type: prometheus`` is supported (Flagger's default); any other provider is
refused naming ``spec.provider.type``, so a Datadog template is not silently sent to
Prometheus.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator, model_validator

from models.flagger import FlaggerModel, SecretRef, load_resource
from models.limits import MAX_NAME, MAX_TEXT, MAX_URL
from models.promql import CUSTOM_PREFIX, TEMPLATE_VARIABLES, VARIABLE

#: Kind, plural and singular of the resource (``kubectl get metrictemplates``).
METRIC_TEMPLATE_KIND = "MetricTemplate"
METRIC_TEMPLATE_PLURAL = "metrictemplates"
METRIC_TEMPLATE_SINGULAR = "metrictemplate"

#: Flagger's providers Autopilot does not query (yet); named in the refusal.
_OTHER_PROVIDERS = (
    "datadog",
    "cloudwatch",
    "newrelic",
    "graphite",
    "stackdriver",
    "influxdb",
    "dynatrace",
    "keptn",
    "splunk",
)


class TemplateProvider(FlaggerModel):
    """Where the query is sent: a Prometheus (the worker's ``PROMETHEUS_URL`` by default)."""

    type: str = Field(default="prometheus", max_length=MAX_NAME, description="prometheus")
    address: str | None = Field(
        default=None,
        max_length=MAX_URL,
        pattern=r"^https?://",
        description="Prometheus URL; defaults to the worker's PROMETHEUS_URL",
    )
    secret_ref: SecretRef | None = Field(
        default=None, description="refused: Prometheus credentials are not supported yet"
    )
    insecure_skip_verify: bool = Field(default=False, description="accepted; ignored")
    headers: Mapping[str, Any] | None = Field(
        default=None, description="refused: request headers are not supported yet"
    )
    region: str | None = Field(default=None, max_length=MAX_NAME, description="accepted; ignored")

    @field_validator("type")
    @classmethod
    def _prometheus_only(cls, value: str) -> str:
        if value != "prometheus":
            others = "; Flagger's other providers are not" if value in _OTHER_PROVIDERS else ""
            raise ValueError(
                f"{value!r} is not supported by Autopilot: only prometheus is queried{others}"
            )
        return value

    @model_validator(mode="after")
    def _no_credentials(self) -> TemplateProvider:
        if self.secret_ref is not None:
            raise ValueError(
                "secretRef is not supported by Autopilot; use an address that needs none"
            )
        if self.headers:
            raise ValueError("headers are not supported by Autopilot")
        return self


class MetricTemplateSpec(FlaggerModel):
    """The ``spec`` of a ``MetricTemplate``: a provider and a PromQL template."""

    provider: TemplateProvider = Field(default_factory=TemplateProvider)
    query: str = Field(min_length=1, max_length=MAX_TEXT, description="PromQL template")

    @field_validator("query")
    @classmethod
    def _known_variables(cls, value: str) -> str:
        for name in VARIABLE.findall(value):
            if name not in TEMPLATE_VARIABLES and not name.startswith(CUSTOM_PREFIX):
                known = ", ".join([*TEMPLATE_VARIABLES, f"{CUSTOM_PREFIX}<key>"])
                raise ValueError(f"query uses {{{{ {name} }}}}, which is not one of: {known}")
        return value


def load_metric_template(source: Mapping[str, Any]) -> MetricTemplateSpec:
    """A ``MetricTemplate`` manifest (ours or Flagger's) or its bare spec.

    Raises:
        models.flagger.ResourceError: every problem, each naming its field path.
    """
    return load_resource(source, METRIC_TEMPLATE_KIND, MetricTemplateSpec)
