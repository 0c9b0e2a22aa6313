"""the model's reported statistics as typed results: cost summaries, paired savings vs a baseline,
the share of the exact optimum's advantage captured. `to_json` is the one place names become
strings (the keys of metrics.json)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from scipy.stats import trim_mean

from rl_order_execution.market import FloatArray, MarketParams

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Z95 = 1.959963984540054


class Notional(Protocol):
    """A market as the cost statistics need it (the simulated one, or the book): $ to bps."""

    @property
    def bps(self) -> float:
        """Basis points of the arrival notional per $."""
        ...


# Metadata of a result field that not every run computes (`field(default=None, metadata=OPTIONAL)`):
# left out of the JSON while None, so adding a metric is one such field at the end of its
# dataclass, and files written before it keep exactly their keys.
OPTIONAL = MappingProxyType({"optional": True})


def json_fields(result: DataclassInstance) -> dict[str, Any]:
    """A flat result as JSON: every field in order under its own name, optional ones when set;
    a number that could not be computed (too few episodes: NaN) is null."""
    out: dict[str, Any] = {}
    for f in fields(result):
        value = getattr(result, f.name)
        if value is None and f.metadata.get("optional"):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def sample_std(x: FloatArray) -> float:
    """Standard deviation with ddof 1; NaN, without numpy's warning, for fewer than two values."""
    return float(x.std(ddof=1)) if len(x) > 1 else math.nan


def standard_error(x: FloatArray, antithetic: bool = False) -> float:
    """SE of the mean; with antithetic pairs (i, i + E/2) the pair averages are the i.i.d. units.
    NaN with fewer than two units."""
    if antithetic:
        half = len(x) // 2
        x = (x[:half] + x[half:]) / 2
    return sample_std(x) / math.sqrt(len(x)) if len(x) > 0 else math.nan


def _none_if_nan(x: float) -> float | None:
    return None if not math.isfinite(x) else float(x)


def negligible(p: MarketParams) -> float:
    """1e-6 bp of the arrival notional, in $: differences below it are float rounding."""
    return 1e-6 / p.bps


@dataclass(frozen=True)
class CostSummary:
    """Mean, std and standard error of a per-episode cost, in $ and in bps of Q*P0."""

    mean: float
    std: float
    se: float
    mean_bps: float
    std_bps: float

    def to_json(self, prefix: str) -> dict[str, float]:
        """metrics.json's flat keys: `{prefix}_mean`, `{prefix}_std`, ..."""
        return {f"{prefix}_{key}": value for key, value in json_fields(self).items()}


def summary(values: FloatArray, p: Notional, antithetic: bool = False) -> CostSummary:
    mean, std = float(values.mean()), sample_std(values)
    se = standard_error(values, antithetic)
    return CostSummary(mean, std, se, mean * p.bps, std * p.bps)


@dataclass(frozen=True)
class Savings:
    """the model's paired statistics of s_i = baseline_i - value_i ($ unless _bps; positive =
    cheaper than the baseline)."""

    avg_savings: float
    avg_savings_bps: float
    savings_std: float
    information_ratio: float | None  # None when the savings do not vary
    win_rate: float  # share of episodes strictly cheaper than the baseline
    var_95: float  # 5th percentile of s
    var_95_bps: float
    ci95_low: float  # 95 % interval of mean(s)
    ci95_high: float
    ci95_low_bps: float
    ci95_high_bps: float
    se: float
    p_value: float  # paired two-sided test of mean savings = 0 (normal approximation)
    significant: bool  # p_value < 0.05
    var_99: float  # 1st percentile of s: the tail that jumps and volatility clusters fatten
    var_99_bps: float
    cvar_95: float  # mean of s over its worst 5 % (at or below the VaR 95 %)
    cvar_95_bps: float

    def to_json(self) -> dict[str, Any]:
        return json_fields(self)


def tail_mean(x: FloatArray, share: float) -> float:
    """Mean of the lowest `share` of x (at least one value): the conditional value at risk."""
    k = max(1, math.ceil(share * len(x)))
    return float(np.partition(x, k - 1)[:k].mean())


def savings_stats(
    baseline: FloatArray,
    values: FloatArray,
    p: Notional,
    antithetic: bool = False,
    bps_per_unit: float | None = None,
) -> Savings:
    """Paired statistics of baseline - values; `bps_per_unit` converts the values' unit to the
    `_bps` fields (default p.bps: values in $; 1.0 for values already in bps)."""
    bps = p.bps if bps_per_unit is None else bps_per_unit
    s = baseline - values
    mean, std = float(s.mean()), sample_std(s)
    se = standard_error(s, antithetic)
    half = Z95 * se
    z = mean / se if se > 0 else (0.0 if mean == 0 else math.copysign(math.inf, mean))
    p_value = math.erfc(abs(z) / math.sqrt(2)) if math.isfinite(z) else 0.0
    if math.isnan(se):  # too few episodes to test: no p-value, never "significant"
        p_value = math.nan
    var_95, var_99, cvar_95 = (
        float(np.percentile(s, 5)),
        float(np.percentile(s, 1)),
        tail_mean(s, 0.05),
    )
    return Savings(
        avg_savings=mean,
        avg_savings_bps=mean * bps,
        savings_std=std,
        information_ratio=_none_if_nan(mean / std) if std > 0 else None,
        win_rate=float((values < baseline).mean()),
        var_95=var_95,
        var_95_bps=var_95 * bps,
        ci95_low=mean - half,
        ci95_high=mean + half,
        ci95_low_bps=(mean - half) * bps,
        ci95_high_bps=(mean + half) * bps,
        se=se,
        p_value=p_value,
        significant=bool(p_value < 0.05),
        var_99=var_99,
        var_99_bps=var_99 * bps,
        cvar_95=cvar_95,
        cvar_95_bps=cvar_95 * bps,
    )


@dataclass(frozen=True)
class GapCaptured:
    """(C_TWAP - C) / (C_TWAP - C_opt) with a paired 95 % interval.

    exact_gap is the exact E[C_TWAP] - E[C_opt] in $ (on replayed bars and the book: the
    bound's advantage on the test episodes). gap, where given, is the optimum's advantage on
    the test episodes, the denominator of value.
    """

    value: float
    ci95_low: float
    ci95_high: float
    exact_gap: float
    gap: float | None = field(default=None, metadata=OPTIONAL)

    def to_json(self) -> dict[str, float]:
        return json_fields(self)


def _paired_ratio(
    d: FloatArray, g: FloatArray, antithetic: bool
) -> tuple[float, float, float, float] | None:
    """mean d / mean g with a delta-method 95 % interval, d and g measured on the same
    episodes: (ratio, low, high, mean g); None where mean g <= 0 or fewer than two units."""
    gap = float(g.mean())
    if gap <= 0 or len(d) < 2:
        return None
    ratio = float(d.mean()) / gap
    se = standard_error((d - ratio * g) / gap, antithetic)
    return ratio, ratio - Z95 * se, ratio + Z95 * se, gap


def gap_captured(
    baseline: FloatArray,
    values: FloatArray,
    exact_gap: float,
    antithetic: bool = False,
    floor: float = 0.0,
    optimum: FloatArray | None = None,
) -> GapCaptured | None:
    """The share of the exact optimum's advantage over the baseline that `values` capture.

    Given the optimum's costs on the same episodes, it is the paired ratio (mean baseline -
    mean values) / (mean baseline - mean optimum), with a delta-method interval: the test
    episodes' luck, which the strategy shares with the optimum, cancels. Without them (lot-rounded
    markets, whose executed optimum is not the bound), it is the mean saving over exact_gap.

    None when the optimum's advantage over TWAP is not larger than the noise of the estimate or
    than `floor` (float rounding: with lambda = 0 and mu = 0 the optimum is TWAP itself).
    """
    s = baseline - values
    se = standard_error(s, antithetic)
    if exact_gap <= max(2 * se, floor, 1e-12):
        return None
    if optimum is not None:
        paired = _paired_ratio(s, baseline - optimum, antithetic)
        if paired is None:
            return None
        value, low, high, gap = paired
        return GapCaptured(value, low, high, exact_gap, gap)
    mean = float(s.mean())
    return GapCaptured(
        value=mean / exact_gap,
        ci95_low=(mean - Z95 * se) / exact_gap,
        ci95_high=(mean + Z95 * se) / exact_gap,
        exact_gap=exact_gap,
    )


def ratio_captured(
    baseline: FloatArray, values: FloatArray, bound: FloatArray
) -> GapCaptured | None:
    """(mean baseline - mean values) / (mean baseline - mean bound), paired per episode, with a
    delta-method 95 % interval (both means are estimated on the same episodes). None when the
    bound is not better than the baseline on average."""
    paired = _paired_ratio(baseline - values, baseline - bound, False)
    return None if paired is None else GapCaptured(*paired)


@dataclass(frozen=True)
class ExactValues:
    """Closed-form E[IS], Std[IS], E[C] in $; None where no closed form is known."""

    is_mean_exact: float | None = None
    is_std_exact: float | None = None
    cost_mean_exact: float | None = None

    def to_json(self) -> dict[str, float | None]:
        return json_fields(self)


@dataclass(frozen=True)
class Spread:
    """Mean, std and standard error across episodes of a per-episode quantity (in its own unit);
    None where it is not finite (participation in a step without market volume)."""

    mean: float | None
    std: float | None
    se: float | None

    def to_json(self) -> dict[str, float | None]:
        return json_fields(self)


def spread(values: FloatArray, antithetic: bool = False) -> Spread:
    if not np.isfinite(values).all():
        return Spread(None, None, None)
    mean, std = float(values.mean()), sample_std(values)
    return Spread(mean, _none_if_nan(std), _none_if_nan(standard_error(values, antithetic)))


@dataclass(frozen=True)
class VolumeMetrics:
    """Execution against the market's volume: VWAP slippage in bps of the episode's market VWAP
    VWAP_mkt (positive: sold below it; VWAP_mkt includes our own permanent impact, as MODEL.md
    defines it), its paired savings vs the baseline (bps, both the plain and the `_bps` fields),
    participation n_k / v_k (per episode: its mean over the N steps and its maximum), and the
    same slippage and savings against the market's VWAP without our own impact (`_ex_impact`:
    our selling does not move that benchmark, so front-loading cannot look like a saving)."""

    vwap_slippage_bps: Spread
    savings_vwap_slippage: Savings
    participation_mean: Spread
    participation_max: Spread
    vwap_slippage_ex_impact_bps: Spread | None = field(default=None, metadata=OPTIONAL)
    savings_vwap_slippage_ex_impact: Savings | None = field(default=None, metadata=OPTIONAL)

    def to_json(self) -> dict[str, Any]:
        return {
            f.name: value.to_json()
            for f in fields(self)
            if (value := getattr(self, f.name)) is not None
        }


def volume_metrics(
    baseline_slippage: FloatArray,
    slippage: FloatArray,
    participation_mean: FloatArray,
    participation_max: FloatArray,
    p: MarketParams,
    antithetic: bool = False,
    ex_impact: tuple[FloatArray, FloatArray] | None = None,
) -> VolumeMetrics:
    """`ex_impact`: the baseline's and the strategy's slippage against the market's VWAP without
    our own impact, per episode (bps)."""
    return VolumeMetrics(
        vwap_slippage_bps=spread(slippage, antithetic),
        savings_vwap_slippage=savings_stats(baseline_slippage, slippage, p, antithetic, 1.0),
        participation_mean=spread(participation_mean, antithetic),
        participation_max=spread(participation_max, antithetic),
        vwap_slippage_ex_impact_bps=None if ex_impact is None else spread(ex_impact[1], antithetic),
        savings_vwap_slippage_ex_impact=None
        if ex_impact is None
        else savings_stats(ex_impact[0], ex_impact[1], p, antithetic, 1.0),
    )


@dataclass(frozen=True)
class StrategyMetrics:
    """One strategy's entry of metrics.json: IS and cost statistics, paired savings vs the
    baseline, the gap share captured and the closed forms where known."""

    is_: CostSummary  # implementation shortfall
    cost: CostSummary  # risk-adjusted cost
    savings_is: Savings
    savings_cost: Savings
    gap_captured: GapCaptured | None = None  # None: no gap given, or too small to measure
    exact_gap: float | None = None  # what gap_captured was measured against; None: not measured
    exact: ExactValues | None = None
    volume: VolumeMetrics | None = field(default=None, metadata=OPTIONAL)
    # replayed bars: the share of the hindsight schedule's advantage over TWAP captured
    hindsight: GapCaptured | None = field(default=None, metadata=OPTIONAL)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.is_.to_json("is"), **self.cost.to_json("cost")}
        out["savings_is"] = self.savings_is.to_json()
        out["savings_cost"] = self.savings_cost.to_json()
        if self.exact_gap is not None:  # the key says a gap was measured, its null that it is noise
            out["gap_captured"] = None if self.gap_captured is None else self.gap_captured.to_json()
        if self.exact is not None:
            out |= self.exact.to_json()
        if self.volume is not None:
            out |= self.volume.to_json()
        if self.hindsight is not None:
            out["hindsight_captured"] = self.hindsight.to_json()
        return out


# With n values a bootstrap resample repeats the smallest one n times with probability n^-n: for
# n <= 3 that is at least 2.5 %, so the "95 % interval" is just the range of the values.
MIN_VALUES_FOR_CI = 4


@dataclass(frozen=True)
class AcrossSeeds:
    """One metric across training seeds: per-seed values, mean, interquartile mean and a
    bootstrap 95 % interval of the mean (`ci95_meaningful` False when it is only the range)."""

    values: tuple[float, ...]
    mean: float
    iqm: float
    ci95_low: float
    ci95_high: float
    ci95_meaningful: bool = True

    def to_json(self) -> dict[str, Any]:
        return json_fields(self)


def across_seeds(values: list[float], seed: int) -> AcrossSeeds:
    x = np.asarray(values)
    rng = np.random.default_rng(seed)
    boot = rng.choice(x, size=(10_000, len(x)), replace=True).mean(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return AcrossSeeds(
        values=tuple(values),
        mean=float(x.mean()),
        iqm=float(trim_mean(x, 0.25)),
        ci95_low=float(lo),
        ci95_high=float(hi),
        ci95_meaningful=len(x) >= MIN_VALUES_FOR_CI,
    )


@dataclass(frozen=True)
class SeedsSummary:
    """The agents' results summarised across their training seeds."""

    cost_savings_bps: AcrossSeeds  # average cost savings vs TWAP
    gap_captured: AcrossSeeds | None = None  # only when every seed's share is measured

    def items(self) -> list[tuple[str, AcrossSeeds]]:
        """(metric, statistics) in the order of metrics.json."""
        return [(f.name, s) for f in fields(self) if (s := getattr(self, f.name)) is not None]

    def to_json(self) -> dict[str, Any]:
        return {name: s.to_json() for name, s in self.items()}
