"""The statistical judge's contract: what ``analysis.judge`` asks, and what a verdict says.

Why a judge at all: a fixed threshold passes a canary 40 % slower than its primary as long as
it stays under ``max: 500``. The judge compares the canary's samples of each metric with the
primary's over the same interval (a Mann-Whitney U test, with a Hodges-Lehmann estimate of
the shift, computed by ``activities/canary/judge.py``), classifies each metric Pass, High,
Low or NoData by its direction and allowed effect, and weighs them into a score that is
Pass, Marginal or Fail (the model of Spinnaker's Kayenta, whose field names these are).

Everything here is pure data: the spec parts are validated with the canary spec, the results
travel in :class:`models.canary.AnalysisResult`, and the workflow only reads them.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Literal

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

#: Points of one side of one comparison at most: the Hodges-Lehmann shift looks at every
#: pair, so 500 points are 250,000 differences (milliseconds), and a range query stays small.
MAX_JUDGE_POINTS = 500
#: The largest allowed effect, as a ratio of canary to primary (a thousandfold).
MAX_EFFECT_RATIO = 1000.0
#: The largest weight of one metric in the score.
MAX_JUDGE_WEIGHT = 1000.0


class _Part(BaseModel):
    """camelCase names, unknown fields refused: as every part of the canary spec."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(validation_alias=to_camel, serialization_alias=to_camel),
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class Direction(StrEnum):
    """Which change of a metric is bad (Kayenta's names)."""

    INCREASE = "increase"  #: a higher canary is bad (latency, errors)
    DECREASE = "decrease"  #: a lower canary is bad (success rate, throughput)
    EITHER = "either"  #: any significant change is bad


#: The direction of Flagger's built-in metrics; a custom metric defaults to ``either``.
BUILTIN_DIRECTIONS = {
    "request-success-rate": Direction.DECREASE,
    "request-duration": Direction.INCREASE,
}


class MetricJudgement(_Part):
    """How the judge reads one metric (``analysis.metrics[].judge``)."""

    direction: Direction | None = Field(
        default=None,
        description="increase | decrease | either: which change is bad; default decrease for "
        "request-success-rate, increase for request-duration, either otherwise",
    )
    allowed_increase: float = Field(
        default=1.1,
        ge=1.0,
        le=MAX_EFFECT_RATIO,
        description="canary/primary ratio above which a significant increase is High",
    )
    allowed_decrease: float = Field(
        default=0.9,
        ge=1 / MAX_EFFECT_RATIO,
        le=1.0,
        description="canary/primary ratio below which a significant decrease is Low",
    )
    weight: float = Field(
        default=1.0, ge=0.0, le=MAX_JUDGE_WEIGHT, description="share of the score"
    )
    critical: bool = Field(default=False, description="High or Low fails the verdict outright")


class ScoreThresholds(_Part):
    """Scores (0-100) a verdict needs: Pass from ``pass``, Marginal from ``marginal``."""

    pass_: float = Field(default=95.0, ge=0.0, le=100.0, alias="pass")
    marginal: float = Field(default=75.0, ge=0.0, le=100.0)

    @model_validator(mode="after")
    def _ordered(self) -> ScoreThresholds:
        if self.marginal > self.pass_:
            raise ValueError(f"marginal ({self.marginal:g}) is above pass ({self.pass_:g})")
        return self


class JudgeSpec(_Part):
    """``analysis.judge``: compare canary with primary at every analysis (Autopilot)."""

    significance: float = Field(
        default=0.05,
        ge=0.0001,  # written 0.0001 in the CRD: every YAML reader sees a number
        le=0.5,
        description="p-value below which a difference is significant",
    )
    score_thresholds: ScoreThresholds = Field(default_factory=ScoreThresholds)
    points: int = Field(
        default=10,
        ge=3,
        le=MAX_JUDGE_POINTS,
        description="range-query steps over the interval, per side",
    )
    min_points: int = Field(
        default=5,
        ge=3,
        le=MAX_JUDGE_POINTS,
        description="points each side needs; fewer is NoData",
    )

    @model_validator(mode="after")
    def _enough_points(self) -> JudgeSpec:
        if self.min_points > self.points:
            raise ValueError(f"minPoints ({self.min_points}) is above points ({self.points})")
        return self

    def step(self, interval: timedelta) -> timedelta:
        """The range queries' step: the interval in ``points`` steps (at least 100 ms)."""
        return max(interval / self.points, timedelta(milliseconds=100))


# =============================================================================
# Results
# =============================================================================


class Classification(StrEnum):
    """One metric's comparison, as Kayenta names it."""

    PASS = "Pass"
    HIGH = "High"
    LOW = "Low"
    NO_DATA = "NoData"


class Verdict(StrEnum):
    """The judge's verdict on one analysis."""

    PASS = "Pass"
    MARGINAL = "Marginal"  #: not a pass: held like no data, judged again
    FAIL = "Fail"
    NO_DATA = "NoData"  #: a held metric lacked evidence: held, judged again


class MetricComparison(BaseModel):
    """Canary against primary for one metric: the numbers and what they mean."""

    name: str
    classification: Classification
    direction: Direction = Direction.EITHER
    canary_median: float | None = None
    primary_median: float | None = None
    shift: float | None = Field(default=None, description="Hodges-Lehmann: canary - primary")
    ratio: float | None = Field(default=None, description="(primary median + shift) / median")
    p_value: float | None = None
    canary_points: int = 0
    primary_points: int = 0
    weight: float = 1.0
    critical: bool = False
    dry_run: bool = False
    no_data: Literal["fail", "hold", "pass"] = Field(
        default="hold", description="the metric's noData policy, for a NoData comparison"
    )
    counted: bool = Field(default=False, description="it decided the score")
    message: str = ""

    def describe(self) -> str:
        """``request-duration High: canary 32.1 vs primary 22.9 (ratio 1.40, p=0.0001)``."""
        tags = "".join(
            f" [{tag}]"
            for tag, on in (("critical", self.critical), ("dry run", self.dry_run))
            if on
        )
        if self.classification == Classification.NO_DATA:
            return f"{self.name} NoData{tags}: {self.message or 'no samples'}"
        ratio = f"ratio {self.ratio:.2f}" if self.ratio is not None else "ratio ?"
        p_value = f"p={self.p_value:.2g}" if self.p_value is not None else "p=?"
        return (
            f"{self.name} {self.classification.value}{tags}: canary {_g(self.canary_median)} vs "
            f"primary {_g(self.primary_median)} ({ratio}, {p_value})"
        )


def _g(value: float | None) -> str:
    return f"{value:.4g}" if value is not None else "?"


class JudgeVerdict(BaseModel):
    """The judge's verdict on one analysis, with every metric's comparison."""

    verdict: Verdict
    score: float | None = Field(default=None, description="0-100; None: nothing was scored")
    pass_score: float = 95.0
    marginal_score: float = 75.0
    window: str = Field(default="", description="the interval compared, e.g. 1m")
    metrics: list[MetricComparison] = Field(default_factory=list)
    message: str = ""

    def summary(self) -> str:
        """``judge Fail (score 50 < 75): request-duration High: ...``."""
        score = f"score {self.score:.0f}" if self.score is not None else "no score"
        why = f"; {self.message}" if self.message else ""
        parts = [m.describe() for m in self.metrics]
        return f"judge {self.verdict.value} ({score}{why}): " + "; ".join(parts)


def weigh(comparisons: list[MetricComparison], spec: JudgeSpec, window: str) -> JudgeVerdict:
    """Weigh the metrics' comparisons into a verdict (pure: the workflow's tests call it too).

    * A dry-run metric is measured and shown, never counted.
    * NoData follows the metric's ``noData`` policy: ``fail`` counts as a failed metric,
      ``pass`` as a passed one, ``hold`` leaves it out of the score but keeps the verdict
      from passing (NoData: held and judged again), for there is no evidence yet.
    * A critical metric that is High or Low (or NoData with ``fail``) fails the verdict.
    * Otherwise the score is the passed metrics' share of the counted weight, in percent:
      from ``scoreThresholds.pass`` Pass, from ``marginal`` Marginal, below it Fail.
    """
    thresholds = spec.score_thresholds
    counted: list[MetricComparison] = []
    held: list[MetricComparison] = []
    for comparison in comparisons:
        if comparison.dry_run:
            counted.append(comparison)
            continue
        if comparison.classification == Classification.NO_DATA and comparison.no_data == "hold":
            held.append(comparison.model_copy(update={"counted": False}))
            counted.append(held[-1])
            continue
        counted.append(comparison.model_copy(update={"counted": True}))
    scored = [c for c in counted if c.counted]

    def passed(c: MetricComparison) -> bool:
        no_data_passes = c.classification == Classification.NO_DATA and c.no_data == "pass"
        return c.classification == Classification.PASS or no_data_passes

    total = sum(c.weight for c in scored)
    score = 100.0 * sum(c.weight for c in scored if passed(c)) / total if total > 0 else None
    critical = [c.name for c in scored if c.critical and not passed(c)]
    verdict, message = Verdict.PASS, ""
    if critical:
        verdict, message = Verdict.FAIL, f"critical: {', '.join(critical)}"
    elif score is not None and score < thresholds.marginal:
        verdict, message = Verdict.FAIL, f"below marginal {thresholds.marginal:g}"
    elif held:
        verdict, message = Verdict.NO_DATA, f"no evidence yet: {', '.join(c.name for c in held)}"
    elif score is not None and score < thresholds.pass_:
        verdict, message = Verdict.MARGINAL, f"below pass {thresholds.pass_:g}"
    elif score is None:
        message = "no metric decides"
    return JudgeVerdict(
        verdict=verdict,
        score=score,
        pass_score=thresholds.pass_,
        marginal_score=thresholds.marginal,
        window=window,
        metrics=counted,
        message=message,
    )
