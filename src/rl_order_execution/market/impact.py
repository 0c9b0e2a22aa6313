"""Replay impact (docs/MODEL.md, "Historical replay"): the $ parameters a replayed market runs with.

Relative impact (the default) carries across instruments: the order is a share rho of the
window's volume, temporary impact is Almgren, Thum, Hauptmann and Li's (2005) fit
(cost per share / price = 0.142 sigma_day participation^0.6) linearised at rho, permanent impact
their gamma = 0.314, and lambda comes from the urgency U (the calibrated schedule's kappa N).
Absolute impact keeps the settings' $ parameters (the second edition's units).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ATHL_COEFFICIENT = 0.142  # temporary: cost per share / price = 0.142 sigma_day participation^0.6
ATHL_EXPONENT = 0.6
ATHL_PERMANENT = 0.314  # gamma, with their turnover factor taken as 1
DEFAULT_PARTICIPATION = 0.05
DEFAULT_URGENCY = 1.0
THICK_VOLUME = 10.0  # relative impact: u is capped at 10 vbar (beta_k >= beta / 10)


def default_temporary_impact(participation: float) -> float:
    """eta = 0.142 rho^-0.4: the fit's cost per share, linear in participation, exact at rho."""
    return float(ATHL_COEFFICIENT * participation ** (ATHL_EXPONENT - 1.0))


@dataclass(frozen=True)
class ImpactSpec:
    """How a replay's impact is set (hashable: it keys the loader's cache). Relative: the
    replay settings (None = their defaults); absolute: the $ parameters and the market volume V."""

    relative: bool
    alpha: float
    beta: float
    lam: float
    V: float
    participation: float | None = None
    temporary_impact: float | None = None
    permanent_impact: float | None = None
    urgency: float | None = None

    @property
    def rho(self) -> float:
        return DEFAULT_PARTICIPATION if self.participation is None else self.participation

    @property
    def eta(self) -> float:
        if self.temporary_impact is None:
            return default_temporary_impact(self.rho)
        return self.temporary_impact

    @property
    def gamma(self) -> float:
        return ATHL_PERMANENT if self.permanent_impact is None else self.permanent_impact

    @property
    def U(self) -> float:
        return DEFAULT_URGENCY if self.urgency is None else self.urgency

    def fewest_bars(self) -> float:
        """Relative impact keeps beta_k - alpha/2 > 0 only when a training session averages more
        than 10 gamma / (2 eta) bars (the thickest bar's beta / 10 against alpha / 2)."""
        return THICK_VOLUME * self.gamma / (2 * self.eta)


@dataclass(frozen=True)
class Impact:
    """What a replayed market runs with: alpha, beta (beta_k at the mean bar volume), lambda and
    the market's volume V over a window, in the model's $ and shares; beta_k is
    beta vbar / clip(u, vbar / 10, thick * vbar). eta, gamma: relative impact's (None absolute)."""

    relative: bool
    alpha: float
    beta: float
    lam: float
    V: float
    thick: float  # the volume u / vbar beyond which a bar is no cheaper
    sigma_day: float
    eta: float | None = None
    gamma: float | None = None

    def twap_temporary_cost_bps(self, Q: float, N: int, P0: float) -> float:
        """TWAP's temporary cost at the mean bar, N beta (Q/N)^2, in bps of Q P0 (relative
        impact: eta sigma_day rho 1e4)."""
        return self.beta * Q / (N * P0) * 1e4


def absolute_impact(spec: ImpactSpec, sigma_day: float) -> Impact:
    """The settings' $ parameters; no bar is cheaper than alpha (u capped at beta/alpha vbar)."""
    thick = spec.beta / spec.alpha if spec.alpha > 0 else math.inf
    return Impact(False, spec.alpha, spec.beta, spec.lam, spec.V, thick, sigma_day)


def relative_impact(
    spec: ImpactSpec, Q: float, N: int, P0: float, sigma: float, bars_per_session: float
) -> Impact:
    """alpha, beta and lambda from sigma per bar and B bars per training session (README):
    sigma_day = sigma sqrt(B), V = Q / rho, beta = eta P0 sigma_day N / V,
    alpha = gamma P0 sigma_day N / (V B), lambda = 2 Q (beta - alpha/2) (cosh(U/N) - 1)."""
    sigma_day = sigma * math.sqrt(bars_per_session)
    V = Q / spec.rho
    beta = spec.eta * P0 * sigma_day * N / V
    alpha = spec.gamma * P0 * sigma_day * N / (V * bars_per_session)
    lam = 2 * Q * (beta - alpha / 2) * (math.cosh(spec.U / N) - 1)
    return Impact(True, alpha, beta, lam, V, THICK_VOLUME, sigma_day, spec.eta, spec.gamma)
