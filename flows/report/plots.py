"""Figures of the HTML report as inline SVG (matplotlib), no external assets: the page opens from an
object store, an email attachment or the Prefect UI's link without a network.

Imported only where a page is drawn (the flow process), never by what workers import.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display on workers or CI
import matplotlib.pyplot as plt  # noqa: E402


def svg(fig) -> str:
    """The figure as an inline `<svg>` element; the figure is closed."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog: the SVG is inlined in HTML


def figure(width: float, height: float):
    """A new figure and its axes."""
    return plt.subplots(figsize=(width, height))


def subplots(*args, **kwargs):
    """A new figure and a grid of axes (`matplotlib.pyplot.subplots`)."""
    return plt.subplots(*args, **kwargs)


def bars(labels: list[str], values: list[float], color: str, title: str, ylabel: str) -> str:
    """A vertical bar chart as SVG."""
    fig, ax = figure(6, 3)
    ax.bar(labels, values, color=color)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return svg(fig)
