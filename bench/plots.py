"""Latency distribution plots: HDR percentile curves drawn to PNG with matplotlib's Agg renderer.

A percentile plot puts latency against percentile on a logarithmic 1/(1-p) axis (as HdrHistogram's own plotter
does): 90 %, 99 %, 99.9 % and 99.99 % are equally spaced, so the tail gets as much room as the median. Histograms
are of nanoseconds (as `bench.report.latency_fields` records them); plots are in microseconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from hdrh.histogram import HdrHistogram
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator

#: (percentile in 0..100, latency in microseconds) pairs, percentile rising.
Curve = Sequence[tuple[float, float]]
Series = HdrHistogram | Curve


def percentile_curve(hist: HdrHistogram, points_per_decade: int = 20) -> list[tuple[float, float]]:
    """The histogram's percentile curve in microseconds: from the 0th percentile to 1 - 1/count, evenly spaced on
    the 1/(1-p) axis, ending at the maximum. Empty for an empty histogram."""
    if points_per_decade < 1:
        raise ValueError(f"points_per_decade must be >= 1, not {points_per_decade}")
    n = hist.get_total_count()
    if n == 0:
        return []
    steps = int(math.log10(n) * points_per_decade) if n > 1 else 0
    curve: list[tuple[float, float]] = []
    for i in range(steps + 1):
        x = 10 ** (i / points_per_decade)  # 1/(1-p)
        pct = 100.0 * (1.0 - 1.0 / x)
        curve.append((pct, hist.get_value_at_percentile(pct) / 1e3))
    last = 100.0 * (1.0 - 1.0 / n) if n > 1 else 0.0
    if curve[-1][0] < last:
        curve.append((last, hist.get_max_value() / 1e3))
    else:
        curve[-1] = (curve[-1][0], hist.get_max_value() / 1e3)
    return curve


def _as_curve(series: Series) -> tuple[list[tuple[float, float]], str]:
    """(curve, legend figures: p50, p99, max and, for a histogram, the sample count)."""
    if isinstance(series, HdrHistogram):
        curve = percentile_curve(series)
        if not curve:
            return curve, ""
        q = series.get_value_at_percentile
        stats = f"p50 {_us(q(50) / 1e3)}, p99 {_us(q(99) / 1e3)}, max {_us(series.get_max_value() / 1e3)}"
        return curve, f"{stats}, n={series.get_total_count():,}"
    curve = [(float(p), float(v)) for p, v in series]
    for p, _ in curve:
        if not 0.0 <= p < 100.0:
            raise ValueError(f"a curve's percentiles lie in [0, 100), not {p}")
    if not curve:
        return curve, ""
    return curve, f"p50 {_us(_value_at(curve, 50.0))}, p99 {_us(_value_at(curve, 99.0))}, max {_us(curve[-1][1])}"


def _x(pct: float) -> float:
    return 1.0 / (1.0 - pct / 100.0)


def _pct_label(x: float) -> str:
    pct = 100.0 * (1.0 - 1.0 / x)
    return f"{pct:.10g}%"


def plot_latency(
    hist_or_curve: Series,
    path: str | Path,
    title: str,
    baseline: Series | None = None,
    *,
    label: str = "measured",
    baseline_label: str = "baseline",
    others: Iterable[tuple[str, Series]] = (),
) -> Path:
    """Write an HDR percentile plot PNG of `hist_or_curve` (an HdrHistogram of nanoseconds, or a curve of
    (percentile, microseconds) pairs) to `path`, with `baseline` dashed on the same axes and `others` beside them.
    Each legend entry gives p50/p99/max and the sample count. ValueError when the main series has no samples."""
    series: list[tuple[str, Series, str]] = [(label, hist_or_curve, "-")]
    if baseline is not None:
        series.append((baseline_label, baseline, "--"))
    series += [(lbl, s, ":") for lbl, s in others]
    curves = []
    for i, (lbl, s, style) in enumerate(series):
        curve, stats = _as_curve(s)
        if not curve:
            if i == 0:
                raise ValueError(f"{label}: no samples to plot")
            continue
        curves.append((lbl, curve, stats, style))

    values = [v for _, c, _, _ in curves for _, v in c if v > 0]
    ms = bool(values) and max(values) >= 10_000  # long delays read better in milliseconds
    fig = Figure(figsize=(9, 6), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for lbl, curve, stats, style in curves:
        ys = [v / 1000 if ms else v for _, v in curve]
        ax.plot([_x(p) for p, _ in curve], ys, style, linewidth=1.6, label=f"{lbl} ({stats})")
    ax.set_xscale("log")
    top = max(_x(c[-1][0]) for _, c, _, _ in curves)
    decades = max(1, math.ceil(math.log10(top)))
    ticks = sorted({1.0, 2.0, *(10.0**k for k in range(1, decades + 1))})
    ax.set_xlim(1.0, 10.0**decades)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(ticks, [_pct_label(t) for t in ticks])
    if values and max(values) / min(values) > 50:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.10g}"))
    ax.set_xlabel("percentile")
    ax.set_ylabel(f"latency ({'ms' if ms else 'µs'})")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    fig.legend(loc="outside lower center", fontsize="small")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out


def _value_at(curve: Sequence[tuple[float, float]], pct: float) -> float:
    """The first value at or above `pct` on the curve (its last value when `pct` lies beyond it)."""
    return next((v for p, v in curve if p >= pct - 1e-9), curve[-1][1])


def _us(v: float) -> str:
    if v >= 1000:
        return f"{v / 1000:,.1f} ms"
    return f"{v:.3g} µs"
