"""Showing a replay report: a plain-text table for the terminal and a PNG chart of cost
against quality per policy (matplotlib: ``pip install 'polyroute[replay]'``)."""

from __future__ import annotations

from pathlib import Path

from polyroute.replay.engine import PolicyResult, Report


def table(report: Report, top: int = 3) -> str:
    """The report as an aligned plain-text table, with its notes below."""
    dataset = report.reward == "correct"
    headers = ["policy", "requests", "cost/1k req $", "latency ms", "quality"]
    if dataset:
        headers += ["strong %", "gap rec."]
    else:
        headers += ["IPS", "SNIPS", "DR", "agree"]
    headers.append("distribution")
    rows = [headers]
    for result in report.results:
        row = [
            result.label,
            str(result.n),
            _money(None if result.cost_mean is None else result.cost_mean * 1000),
            _number(None if result.latency_mean is None else result.latency_mean * 1000, 1),
            _number(result.quality, 3),
        ]
        if dataset:
            share = None if result.strong_share is None else result.strong_share * 100
            row += [_number(share, 1), _number(result.gap_recovered, 3)]
        else:
            row += [
                _number(result.ips, 3),
                _number(result.snips, 3),
                _number(result.dr, 3),
                _number(result.agreement, 2),
            ]
        row.append(_distribution(result, top))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(headers))]
    lines = []
    for index, row in enumerate(rows):
        cells = [
            cell.ljust(widths[i]) if i in (0, len(row) - 1) else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    title = f"replay of {report.source} (quality = {report.reward})"
    notes = [f"note: {note}" for note in report.notes]
    return "\n".join([title, "", *lines, "", *notes])


def _money(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if value < 100 else f"{value:.2f}"


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _distribution(result: PolicyResult, top: int) -> str:
    if not result.n:
        return "-"
    common = result.distribution.most_common()
    parts = [f"{name} {count / result.n:.0%}" for name, count in common[:top]]
    if len(common) > top:
        parts.append(f"+{len(common) - top} more")
    return ", ".join(parts)


class ChartUnavailable(RuntimeError):
    """matplotlib is not installed."""


def chart(report: Report, path: Path) -> Path:
    """A PNG of cost per 1,000 requests (x) against quality (y), one point per policy
    (references hollow): the cost/quality frontier at a glance."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        raise ChartUnavailable("--png needs matplotlib: pip install 'polyroute[replay]'") from None
    figure, axes = pyplot.subplots(figsize=(8, 5.5), dpi=110)
    points: dict[tuple[float, float], list[PolicyResult]] = {}
    for result in report.results:
        quality = _chart_quality(result)
        if result.cost_mean is None or quality is None:
            continue
        key = (round(result.cost_mean * 1000, 9), round(quality, 6))
        points.setdefault(key, []).append(result)
    for (x, quality), results in points.items():  # policies on one spot share a label
        if all(r.reference for r in results):  # hollow grey: the log, all-weak/strong, oracle
            axes.scatter([x], [quality], s=60, zorder=3, facecolors="none", edgecolors="grey")
        else:
            axes.scatter([x], [quality], s=60, zorder=3)
        label = ", ".join(r.label for r in results)
        axes.annotate(label, (x, quality), textcoords="offset points", xytext=(6, 4), fontsize=8)
    plotted = len(points)
    measure = {"correct": "share correct", "feedback": "mean feedback"}.get(
        report.reward, "success rate"
    )
    axes.set_xlabel("estimated cost per 1,000 requests (USD)")
    axes.set_ylabel(f"quality ({measure}{'' if report.reward == 'correct' else ', DR or DM'})")
    axes.set_title(f"polyroute replay: cost vs quality ({report.source})", fontsize=10)
    axes.grid(True, alpha=0.3)
    axes.margins(x=0.15, y=0.1)  # room for the labels
    if not plotted:
        axes.text(
            0.5, 0.5, "no policy has a quality estimate", ha="center", transform=axes.transAxes
        )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    pyplot.close(figure)
    return path


def _chart_quality(result: PolicyResult) -> float | None:
    if result.dr is not None:
        return result.dr
    return result.quality
