"""The backtest's picture: churns caught 7-90 days ahead against alerts per 100 accounts per week, the
rules and the model side by side (issue 10, item 7). A team picks its alert budget from this curve:
how many more churns each extra alert a week buys."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: render to memory
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from model.backtest import Backtest

STYLE = {"model": ("Baton model", "#1f3a5f"), "rules": ("rules (health score)", "#c62828")}


def figure(bt: Backtest) -> Figure:
    """Both curves, and where each method stood in the backtest (the model at its budget, the rules'
    stored alerts); ``png`` renders it, tests read the lines' data."""
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for method, (label, color) in STYLE.items():
        curve = bt.curves.get(method) or []
        x = [p["alerts_per_100_week"] for p in curve]
        y = [p["churn_recall_7_90d"] * 100 for p in curve]
        ax.plot(x, y, color=color, marker="o", markersize=3, label=label, gid=method)
        at = bt.model if method == "model" else bt.rules
        if at.get("churn_alerts_per_100_week") is not None and at.get("churn_recall_7_90d") is not None:
            ax.plot(
                [at["churn_alerts_per_100_week"]],
                [at["churn_recall_7_90d"] * 100],
                color=color,
                marker="*",
                markersize=12,
                linestyle="none",
                label=f"{label}: as alerted",
                gid=f"{method}.point",
            )
    ax.axvline(bt.budget, color="#888888", linestyle=":", linewidth=1, label=f"budget {bt.budget:g}")
    ax.set_xscale("log")
    ax.set_xlabel("churn-risk alerts per 100 accounts per week")
    ax.set_ylabel("churns caught 7-90 days ahead, %")
    ax.set_ylim(0, 100)
    ax.set_title(f"Backtest {bt.first.isoformat()} to {bt.last.isoformat()}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def png(bt: Backtest) -> bytes:
    fig = figure(bt)
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    return out.getvalue()


def lines(fig: Figure) -> dict[str, Any]:
    """The plotted data by line id (``gid``): what a test checks instead of pixels."""
    return {ln.get_gid(): list(zip(*ln.get_data(), strict=True)) for ln in fig.axes[0].lines if ln.get_gid()}
