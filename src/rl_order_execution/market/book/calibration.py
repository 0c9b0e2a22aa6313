"""Calibration of the book market from a top-of-book file (docs/MODEL.md, "Limit-order book market",
"Calibration from a top-of-book file"), with a standard error for every estimate.

The file (CSV or Parquet) has one row per step: `timestamp` (ISO 8601, or epoch seconds; UTC
unless it carries an offset), `bid`, `ask`, `bid_size`, `ask_size` and optionally `buy_high`,
the highest price of a buyer-initiated trade from this row's timestamp to the next row's (empty if
none; below the ask it counts as no buy reaching the ask).

Steps and sessions: the step is `step_seconds`, or else the modal time between consecutive rows
(5 seconds on the default market). Two consecutive rows are one step apart when their times
differ by the step within STEP_TOLERANCE of it; a session is a maximal run of rows one step
apart, and only pairs inside a session count as transitions, moves or fill observations (the row
before a gap, such as the close, opens no pair)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy import optimize, stats

from rl_order_execution.errors import DataError
from rl_order_execution.market.book.params import DEFAULTS, FloatArray, IntArray

REQUIRED = ("timestamp", "bid", "ask", "bid_size", "ask_size")
OPTIONAL = ("buy_high",)
STEP_TOLERANCE = 0.01  # share of the step by which "one step apart" may miss it
MIN_PAIRS = 30  # pairs one step apart each spread and each level needs
DEPTH_EPSILON = 1e-6  # M = floor((buy_high - ask) / tau + 1e-6)


class BookDataError(DataError):
    """A top-of-book file that cannot be calibrated on as it is: one line naming the file, the
    row and the column (a DataError: the CLI prints it and exits 2)."""


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopOfBook:
    """Validated rows in strictly increasing time: times in seconds, prices and sizes."""

    path: Path
    seconds: FloatArray
    bid: FloatArray
    ask: FloatArray
    bid_size: FloatArray
    ask_size: FloatArray
    buy_high: FloatArray | None  # nan where no buy traded

    def __len__(self) -> int:
        return len(self.bid)


def _row(path: Path, i: int) -> str:
    """How a user finds data row i (0-based): the CSV line too (header = line 1)."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return f"row {i + 1}"
    return f"row {i + 1} (line {i + 2})"


def _read_frame(path: Path) -> Any:
    import pandas as pd

    if not path.is_file():
        raise BookDataError(f"data file {path} does not exist")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pandas(ignore_metadata=True)
        return pd.read_csv(path, dtype={"timestamp": str})
    except (OSError, ValueError, ImportError) as exc:
        raise BookDataError(f"data file {path}: cannot be read ({exc})") from exc


def _seconds(frame: Any, path: Path) -> FloatArray:
    """Seconds since the epoch from ISO 8601 text, a datetime column or epoch seconds."""
    import pandas as pd

    column = frame["timestamp"]
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        parsed = pd.to_datetime(column, utc=True)
    elif pd.api.types.is_numeric_dtype(column.dtype):
        parsed = pd.to_datetime(column, unit="s", utc=True, errors="coerce")
    else:
        text = column.astype("string")
        numbers = pd.to_numeric(text, errors="coerce")
        if numbers.notna().all():
            parsed = pd.to_datetime(numbers, unit="s", utc=True, errors="coerce")
        else:
            parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise BookDataError(
            f"data file {path}, {_row(path, i)}, column 'timestamp': {column.iloc[i]!r} is not "
            "an ISO 8601 time or epoch seconds"
        )
    ns = parsed.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    out: FloatArray = ns.astype(np.int64) / 1e9
    return out


def _shown(value: Any) -> str:
    """A file's value as a user wrote it: text quoted, numbers plain."""
    if isinstance(value, str):
        return repr(value)
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return repr(value)


def _values(
    frame: Any, path: Path, column: str, positive: bool, optional: bool = False
) -> FloatArray:
    """A numeric column, finite and > 0 (prices, sizes); missing values allowed if optional."""
    import pandas as pd

    raw = frame[column]
    values: FloatArray = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    missing = pd.isna(raw).to_numpy()
    bad = ~np.isfinite(values) | (values <= 0 if positive else False)
    if optional:
        bad &= ~missing
    rows = np.flatnonzero(bad)
    if rows.size:
        i = int(rows[0])
        what = "missing" if missing[i] else f"{_shown(raw.iloc[i])} is not a number > 0"
        kind = "size" if column.endswith("size") else "price"
        raise BookDataError(
            f"data file {path}, {_row(path, i)}, column {column!r}: {what} (a {kind} must be > 0)"
        )
    return values


def read_top_of_book(path: str | Path) -> TopOfBook:
    """Read and validate a top-of-book file (see the module's docstring)."""
    path = Path(path)
    frame = _read_frame(path)
    present = set(map(str, frame.columns))
    for column in REQUIRED:
        if column not in present:
            shown = ", ".join(sorted(present)) or "none"
            raise BookDataError(f"data file {path}: no column {column!r} (columns: {shown})")
    if len(frame) < 2:
        raise BookDataError(f"data file {path}: {len(frame)} rows; at least 2 are needed")
    seconds = _seconds(frame, path)
    steps = np.diff(seconds)
    if (steps <= 0).any():
        i = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise BookDataError(
            f"data file {path}, {_row(path, i)}, column 'timestamp': not after the previous "
            "row's; times must be strictly increasing"
        )
    bid, ask = _values(frame, path, "bid", True), _values(frame, path, "ask", True)
    crossed = np.flatnonzero(ask < bid)
    if crossed.size:
        i = int(crossed[0])
        raise BookDataError(
            f"data file {path}, {_row(path, i)}, columns 'bid'/'ask': crossed quotes, ask "
            f"{ask[i]:g} < bid {bid[i]:g}"
        )
    buy_high = None
    if "buy_high" in present:
        buy_high = _values(frame, path, "buy_high", True, optional=True)
    return TopOfBook(
        path,
        seconds,
        bid,
        ask,
        _values(frame, path, "bid_size", True),
        _values(frame, path, "ask_size", True),
        buy_high,
    )


# --- rows to model states ---------------------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """Per row: spread (ticks), imbalance level index, the depth M reached (-1: no buy reached the
    ask; None without buy_high); per pair of rows one step apart: its first row (`pairs`)."""

    spread: IntArray
    level: IntArray
    depth: IntArray | None
    pairs: IntArray
    step_seconds: float


def nearest_level(imbalance: FloatArray, levels: FloatArray) -> IntArray:
    """The level nearest to each imbalance; a tie goes to the lower level."""
    distance = np.abs(imbalance[:, None] - levels[None, :])
    out: IntArray = np.argmin(distance + 1e-12 * np.arange(len(levels)), axis=1)
    return out


def modal_step(seconds: FloatArray) -> float:
    """The most frequent time between consecutive rows (ms resolution; ties: the shortest)."""
    ms = np.rint(np.diff(seconds) * 1000).astype(np.int64)
    values, counts = np.unique(ms, return_counts=True)
    return float(values[np.argmax(counts)]) / 1000


def observe_rows(
    book: TopOfBook, tick: float, levels: FloatArray, step_seconds: float | None = None
) -> Observed:
    """Spreads, levels, depths and the pairs one step apart of a validated file."""
    width = (book.ask - book.bid) / tick
    spread = np.rint(width).astype(np.int64)
    locked = np.flatnonzero(spread < 1)
    if locked.size:
        i = int(locked[0])
        raise BookDataError(
            f"data file {book.path}, {_row(book.path, i)}, columns 'bid'/'ask': spread "
            f"{book.ask[i] - book.bid[i]:g} is under one tick ({tick:g}); spreads are >= 1 tick"
        )
    imbalance = (book.bid_size - book.ask_size) / (book.bid_size + book.ask_size)
    step = modal_step(book.seconds) if step_seconds is None else float(step_seconds)
    apart = np.abs(np.diff(book.seconds) - step) <= STEP_TOLERANCE * step
    depth = None
    if book.buy_high is not None:
        reached = np.floor((book.buy_high - book.ask) / tick + DEPTH_EPSILON)
        depth = np.where(np.isnan(book.buy_high) | (reached < 0), -1, reached).astype(np.int64)
    return Observed(spread, nearest_level(imbalance, levels), depth, np.flatnonzero(apart), step)


# --- estimates --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transitions:
    """A chain's transition matrix by counting: P_ij = n_ij / n_i, SE sqrt(P (1 - P) / n_i)."""

    matrix: FloatArray
    se: FloatArray
    counts: IntArray  # n_i, transitions out of each state

    @staticmethod
    def count(before: IntArray, after: IntArray, states: int) -> Transitions:
        n_ij = np.zeros((states, states), dtype=np.int64)
        np.add.at(n_ij, (before, after), 1)
        n_i = n_ij.sum(axis=1)
        P = n_ij / np.maximum(n_i, 1)[:, None]
        return Transitions(P, np.sqrt(P * (1 - P) / np.maximum(n_i, 1)[:, None]), n_i)


@dataclass(frozen=True)
class LinearFit:
    """A two-parameter linear summary (a, b) by weighted least squares, with its standard errors
    and the chi-square test of the linear form (statistic, degrees of freedom, p-value)."""

    names: tuple[str, str]
    values: tuple[float, float]
    se: tuple[float, float]
    chi_square: float
    dof: int
    p_value: float


@dataclass(frozen=True)
class FillFit:
    """F_i per level and kappa_f by maximum likelihood; covariance from the inverse observed
    information (order F_1..F_L, kappa_f)."""

    fill_table: FloatArray
    fill_decay: float
    covariance: FloatArray
    observations: IntArray  # rows per level

    @property
    def fill_table_se(self) -> FloatArray:
        out: FloatArray = np.sqrt(np.diag(self.covariance)[:-1])
        return out

    @property
    def fill_decay_se(self) -> float:
        return float(np.sqrt(self.covariance[-1, -1]))


@dataclass(frozen=True)
class BookCalibration:
    """Every estimate of a top-of-book file, with standard errors."""

    path: Path
    rows: int
    pairs: int
    step_seconds: float
    tick: float
    spreads: IntArray
    levels: FloatArray
    spread_transition: Transitions
    imbalance_transition: Transitions
    move_table: FloatArray  # (L, 2): up, down
    move_table_se: FloatArray
    moves: LinearFit  # (move_probability, imbalance_signal)
    fills: FillFit | None  # without buy_high: None
    fill_summary: LinearFit | None  # (fill_rate, fill_imbalance)

    def book_section(self) -> dict[str, Any]:
        """The `book:` settings these estimates give (the tables, which hold whether or not the
        linear forms do); rows rounded to 6 decimals, still summing to 1."""
        section: dict[str, Any] = {
            "tick": self.tick,
            "spreads": [int(s) for s in self.spreads],
            "spread_transition": [_stochastic_row(r) for r in self.spread_transition.matrix],
            "imbalance_levels": [float(x) for x in self.levels],
            "imbalance_transition": [_stochastic_row(r) for r in self.imbalance_transition.matrix],
            "move_table": [[_round(u), _round(d)] for u, d in self.move_table],
        }
        if self.fills is not None:
            section["fill_table"] = [_round(x) for x in self.fills.fill_table]
            section["fill_decay"] = _round(self.fills.fill_decay)
        return section


def _round(x: float) -> float:
    return float(round(float(x), 6))


def _stochastic_row(row: FloatArray) -> list[float]:
    """Rounded to 6 decimals with the largest entry taking the rounding, so the row sums to 1."""
    out = [_round(x) for x in row]
    j = int(np.argmax(row))
    out[j] = _round(1.0 - sum(x for i, x in enumerate(out) if i != j))
    return out


def _check_enough(
    counts: IntArray, labels: Sequence[str], path: Path, columns: str, what: str
) -> None:
    for label, n in zip(labels, counts, strict=True):
        if n < MIN_PAIRS:
            raise BookDataError(
                f"data file {path}, columns {columns}: {label} has {n} rows followed by a row one "
                f"step apart; at least {MIN_PAIRS} are needed to estimate {what}"
            )


def move_shares(
    level: IntArray, move: IntArray, levels: int
) -> tuple[FloatArray, FloatArray, IntArray]:
    """Shares of up and down moves per level, (L, 2), binomial SEs, and the counts n_i."""
    n = np.bincount(level, minlength=levels)
    ups = np.bincount(level[move > 0], minlength=levels)
    downs = np.bincount(level[move < 0], minlength=levels)
    shares = np.stack([ups, downs], axis=1) / np.maximum(n, 1)[:, None]
    se = np.sqrt(shares * (1 - shares) / np.maximum(n, 1)[:, None])
    return shares, se, n


def _gls(y: FloatArray, X: FloatArray, V: FloatArray) -> tuple[FloatArray, FloatArray, float]:
    """(b, cov b, chi-square) of y = X b with Cov(y) = V (pseudo-inverse for exact zeros)."""
    Vi = np.linalg.pinv(V)
    cov: FloatArray = np.linalg.inv(X.T @ Vi @ X).astype(np.float64)
    b: FloatArray = cov @ X.T @ Vi @ y
    r = y - X @ b
    return b, cov, float(r @ Vi @ r)


def _ratio_fit(
    names: tuple[str, str], b: FloatArray, cov: FloatArray, chi2: float, dof: int
) -> LinearFit:
    """(b0, b1 / b0) with delta-method SEs."""
    a, slope = float(b[0]), float(b[1])
    ratio = slope / a if a != 0 else float("nan")
    grad = np.array([-slope / a**2, 1 / a]) if a != 0 else np.full(2, np.nan)
    p_value = float(stats.chi2.sf(chi2, dof)) if dof > 0 else float("nan")
    se = (math.sqrt(cov[0, 0]), math.sqrt(max(float(grad @ cov @ grad), 0.0)))
    return LinearFit(names, (a, ratio), se, chi2, dof, p_value)


def fit_moves(shares: FloatArray, n: IntArray, levels: FloatArray) -> LinearFit:
    """(p, theta) with up = p (1 + theta iota)/2, down = p (1 - theta iota)/2, linear in
    (p, p theta); the covariance of each level's (up, down) is the multinomial one at the fitted
    shares (a first pass at the observed shares)."""
    L = len(levels)
    y = shares.reshape(-1)
    X = np.zeros((2 * L, 2))
    X[0::2] = np.stack([np.full(L, 0.5), levels / 2], axis=1)
    X[1::2] = np.stack([np.full(L, 0.5), -levels / 2], axis=1)
    fitted = shares
    for _ in range(2):
        V = np.zeros((2 * L, 2 * L))
        for i in range(L):
            u, d = np.clip(fitted[i], 1e-9, 1.0)
            V[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = np.array(
                [[u * (1 - u), -u * d], [-u * d, d * (1 - d)]]
            ) / max(n[i], 1)
        b, cov, chi2 = _gls(y, X, V)
        fitted = (X @ b).reshape(L, 2)
    return _ratio_fit(("move_probability", "imbalance_signal"), b, cov, chi2, 2 * L - 2)


def fit_fill_summary(fills: FillFit, levels: FloatArray) -> LinearFit:
    """(A, phi) with F_i = A (1 + phi iota_i), linear in (A, A phi), weighted by the MLE's
    covariance of the F_i."""
    X = np.stack([np.ones(len(levels)), levels], axis=1)
    V = fills.covariance[:-1, :-1]
    b, cov, chi2 = _gls(fills.fill_table, X, V)
    return _ratio_fit(("fill_rate", "fill_imbalance"), b, cov, chi2, len(levels) - 2)


# --- fill model: maximum likelihood -----------------------------------------------------------


def _fill_counts(level: IntArray, depth: IntArray, levels: int) -> tuple[IntArray, IntArray]:
    """(rows per level where no buy reached the ask (L,), rows per level and depth j (L, J))."""
    none = np.bincount(level[depth < 0], minlength=levels)
    J = int(depth.max()) + 1 if (depth >= 0).any() else 1
    at = np.zeros((levels, J), dtype=np.int64)
    np.add.at(at, (level[depth >= 0], depth[depth >= 0]), 1)
    return none, at


def fill_log_likelihood(
    theta: FloatArray, none: IntArray, at: IntArray
) -> tuple[float, FloatArray]:
    """Log-likelihood and gradient in (F_1..F_L, kappa_f): P(no buy at the ask) = exp(-F_i),
    P(M = j) = exp(-F_i r^(j+1)) - exp(-F_i r^j), r = exp(-kappa_f)."""
    F, kappa = theta[:-1, None], theta[-1]
    j = np.arange(at.shape[1])[None, :]
    x_lo, x_hi = F * np.exp(-kappa * (j + 1)), F * np.exp(-kappa * j)  # F r^(j+1), F r^j
    gap = x_hi - x_lo
    # log(exp(-x_lo) - exp(-x_hi)) = -x_lo + log(1 - exp(-gap))
    with np.errstate(divide="ignore"):
        log_p = -x_lo + np.log(-np.expm1(-gap))
    used = at > 0
    ll = float(-(none * theta[:-1]).sum() + np.where(used, at * log_p, 0.0).sum())
    # d log P / d theta = (d e^{-x_lo} - d e^{-x_hi}) / (e^{-x_lo} - e^{-x_hi})
    w = 1.0 / np.where(used, -np.expm1(-gap), 1.0)  # e^{-x_lo} / P
    e = np.exp(-gap)  # e^{-x_hi} / e^{-x_lo}
    dF = (-x_lo / F + (x_hi / F) * e) * w
    dk = (x_lo * (j + 1) - x_hi * j * e) * w
    grad = np.empty_like(theta)
    grad[:-1] = -none + np.where(used, at * dF, 0.0).sum(axis=1)
    grad[-1] = np.where(used, at * dk, 0.0).sum()
    return ll, grad


def _hessian(theta: FloatArray, none: IntArray, at: IntArray) -> FloatArray:
    """Observed information: minus the Hessian, central differences of the analytic gradient."""
    n = len(theta)
    H = np.empty((n, n))
    for k in range(n):
        h = 1e-5 * max(abs(theta[k]), 1e-3)
        up, down = theta.copy(), theta.copy()
        up[k] += h
        down[k] -= h
        H[:, k] = (
            fill_log_likelihood(up, none, at)[1] - fill_log_likelihood(down, none, at)[1]
        ) / (2 * h)
    return -(H + H.T) / 2


def fit_fills(level: IntArray, depth: IntArray, levels: FloatArray, path: Path) -> FillFit:
    """Maximum likelihood of (F_i, kappa_f) with the inverse observed information."""
    L = len(levels)
    none, at = _fill_counts(level, depth, L)
    rows = none + at.sum(axis=1)
    for i in range(L):
        if at[i].sum() == 0:
            raise BookDataError(
                f"data file {path}, column 'buy_high': no buy reached the ask at imbalance level "
                f"{levels[i]:g}; its fill rate cannot be estimated"
            )
    if at[:, 1:].sum() == 0:
        raise BookDataError(
            f"data file {path}, column 'buy_high': no buy went past the ask; fill_decay cannot be "
            "estimated"
        )
    F0 = -np.log(np.maximum(none, 0.5) / rows)
    theta0 = np.append(F0, float(DEFAULTS["fill_decay"]))

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        ll, grad = fill_log_likelihood(theta, none, at)
        return -ll, -grad

    bounds = [(1e-9, None)] * (L + 1)
    result = optimize.minimize(
        objective,
        theta0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 10_000},
    )
    if not result.success:
        raise BookDataError(
            f"data file {path}, column 'buy_high': the fill model's fit failed ({result.message})"
        )
    theta = result.x
    covariance: FloatArray = np.linalg.inv(_hessian(theta, none, at)).astype(np.float64)
    return FillFit(theta[:-1], float(theta[-1]), covariance, rows)


# --- the whole calibration --------------------------------------------------------------------


def calibrate_book(
    path: str | Path,
    tick: float | None = None,
    levels: Sequence[float] | None = None,
    step_seconds: float | None = None,
) -> BookCalibration:
    """Estimate the book market from a top-of-book file: tick and levels default to the model's
    (0.01, [-0.8, -0.4, 0, 0.4, 0.8]); the spreads are the distinct ones observed."""
    book = read_top_of_book(path)
    tau = float(DEFAULTS["tick"] if tick is None else tick)
    iota = np.array(DEFAULTS["imbalance_levels"] if levels is None else levels, dtype=np.float64)
    obs = observe_rows(book, tau, iota, step_seconds)
    spreads, spread_index = np.unique(obs.spread, return_inverse=True)
    k = obs.pairs
    spread_labels = [f"spread of {s} tick{'s' if s != 1 else ''}" for s in spreads]
    level_labels = [f"imbalance level {x:g}" for x in iota]
    spread_chain = Transitions.count(spread_index[k], spread_index[k + 1], len(spreads))
    _check_enough(
        spread_chain.counts,
        spread_labels,
        book.path,
        "'bid'/'ask'",
        "its row of book.spread_transition",
    )
    level_chain = Transitions.count(obs.level[k], obs.level[k + 1], len(iota))
    _check_enough(
        level_chain.counts,
        level_labels,
        book.path,
        "'bid_size'/'ask_size'",
        "its row of book.imbalance_transition",
    )
    mid = (book.bid + book.ask) / 2
    change = mid[k + 1] - mid[k]
    move = np.where(np.abs(change) <= 1e-9 * tau, 0, np.sign(change)).astype(np.int64)
    shares, shares_se, n = move_shares(obs.level[k], move, len(iota))
    fills = fill_summary = None
    if obs.depth is not None:
        fills = fit_fills(obs.level[k], obs.depth[k], iota, book.path)
        fill_summary = fit_fill_summary(fills, iota)
    return BookCalibration(
        path=book.path,
        rows=len(book),
        pairs=len(k),
        step_seconds=obs.step_seconds,
        tick=tau,
        spreads=spreads.astype(np.int64),
        levels=iota,
        spread_transition=spread_chain,
        imbalance_transition=level_chain,
        move_table=shares,
        move_table_se=shares_se,
        moves=fit_moves(shares, n, iota),
        fills=fills,
        fill_summary=fill_summary,
    )


# --- the YAML config --------------------------------------------------------------------------


def _list(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:g}" if isinstance(v, int) else repr(float(v)) for v in values) + "]"


def _se(values: Sequence[float] | FloatArray) -> str:
    return ", ".join(f"{v:.2g}" for v in values)


def _summary(fit: LinearFit) -> str:
    (a, b), (sa, sb) = fit.values, fit.se
    return (
        f"#   {fit.names[0]} {a:.6g} (SE {sa:.2g}), {fit.names[1]} {b:.6g} (SE {sb:.2g}); "
        f"chi-square of the linear form {fit.chi_square:.3g} on {fit.dof} df, p = {fit.p_value:.3g}"
    )


def calibration_yaml(cal: BookCalibration) -> str:
    """A config whose `book:` section a run uses as it is; each estimate's SE as a comment, the
    linear summaries and their fit tests as comments."""
    section = cal.book_section()
    lines = [
        f"# Book market calibrated from {cal.path.name}: {cal.rows} rows, {cal.pairs} pairs one "
        f"step ({cal.step_seconds:g} s) apart.",
        "# Standard errors in the comments; the tables hold whether or not the linear forms do.",
        "simulation:",
        "  price_model: book",
        "book:",
        f"  tick: {cal.tick!r}",
        f"  spreads: {_list(section['spreads'])}",
        "  spread_transition:",
    ]
    chain = cal.spread_transition
    for s, row, se, n in zip(
        cal.spreads, section["spread_transition"], chain.se, chain.counts, strict=True
    ):
        lines.append(f"    - {_list(row)}  # from spread {s}: SE {_se(se)} ({n} transitions)")
    lines.append(f"  imbalance_levels: {_list(section['imbalance_levels'])}")
    lines.append("  imbalance_transition:")
    chain = cal.imbalance_transition
    for x, row, se, n in zip(
        cal.levels, section["imbalance_transition"], chain.se, chain.counts, strict=True
    ):
        lines.append(f"    - {_list(row)}  # from {x:g}: SE {_se(se)} ({n} transitions)")
    lines.append("  move_table:  # [up, down] per level")
    for x, row, se in zip(cal.levels, section["move_table"], cal.move_table_se, strict=True):
        lines.append(f"    - {_list(row)}  # level {x:g}: SE {_se(se)}")
    lines.append("  # linear summary, not used: up/down = p (1 +/- theta iota) / 2")
    lines.append(_summary(cal.moves).replace("#", "  #", 1))
    if cal.fills is not None and cal.fill_summary is not None:
        lines.append(
            f"  fill_table: {_list(section['fill_table'])}  # SE {_se(cal.fills.fill_table_se)}"
        )
        lines.append(f"  fill_decay: {section['fill_decay']!r}  # SE {cal.fills.fill_decay_se:.2g}")
        lines.append("  # linear summary, not used: F = A (1 + phi iota)")
        lines.append(_summary(cal.fill_summary).replace("#", "  #", 1))
    else:
        lines.append(
            "  # no buy_high column: fill_rate, fill_imbalance and fill_decay keep their defaults"
        )
    text = "\n".join(lines) + "\n"
    yaml.safe_load(text)  # the text is valid YAML by construction; fail here, not in a run
    return text
