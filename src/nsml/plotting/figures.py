"""Metric curves as a PNG: one panel per metric, one line per session."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any


def draw(series: dict[str, list[dict[str, Any]]], output: Path) -> list[str]:
    """Draw ``{session: [metric points]}``; returns the metric names drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_metric: dict[str, dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
    for session, points in series.items():
        for point in points:
            if point["value"] is not None:
                by_metric[point["key"]][session].append((point["step"], point["value"]))
    metrics = sorted(by_metric)
    if not metrics:
        raise ValueError("no numeric metrics were reported yet")
    columns = min(3, len(metrics))
    rows = math.ceil(len(metrics) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.6 * rows), squeeze=False)
    for index, metric in enumerate(metrics):
        ax = axes[index // columns][index % columns]
        for session, curve in sorted(by_metric[metric].items()):
            curve.sort()
            ax.plot([p[0] for p in curve], [p[1] for p in curve], marker="o", markersize=3, label=session)
        ax.set_title(metric)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if len(series) > 1:
            ax.legend(fontsize="small")
    for index in range(len(metrics), rows * columns):
        axes[index // columns][index % columns].axis("off")
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=110)
    plt.close(figure)
    return metrics
