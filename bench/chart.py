"""A PNG chart of the ratios measured by ``bench/run.py``.

    python bench/chart.py [RESULTS.json] [OUT.png]

Defaults: ``bench/results/latest.json`` (written by every run) and the
chart path that run chose (``docs/performance.png`` on a full run, none for
``--quick``/``--only``); with RESULTS.json given, ``docs/performance.png``.
Needs matplotlib, which the ``bench_chart`` nox session installs in a venv
of its own (never beside the servers: it brings numpy, which openpyxl
imports when present, and every worker would grow by about 20 MB); the
kernel does not depend on it.

One horizontal bar per ratio on a logarithmic axis (the caching processors
reach 20–90×, the rest sit near 1×), a black tick at each target, and the
bar coloured by the verdict: green met, red missed, grey informational or
not judged on this machine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_RESULTS = HERE / "results" / "latest.json"
DEFAULT_CHART = HERE.parent / "docs" / "performance.png"

COLOURS = {"PASS": "#3a9d5d", "MISS": "#d0473a"}
INFO = "#9a9a9a"


def draw(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = [b for b in results["bars"] if b.get("ratio") and b["ratio"] > 0]
    if not bars:
        raise ValueError("no ratios to draw")
    bars = list(reversed(bars))  # first row at the top
    labels = [b["label"] for b in bars]
    ratios = [b["ratio"] for b in bars]
    colours = [COLOURS.get(b.get("verdict", ""), INFO) if b.get("judged") else INFO for b in bars]

    fig, ax = plt.subplots(figsize=(9.5, 0.42 * len(bars) + 1.9), dpi=110)
    ys = range(len(bars))
    ax.barh(ys, ratios, color=colours, height=0.62, left=0)
    ax.set_xscale("log")
    lo = min(min(ratios), *(b["target"] for b in bars if b.get("target"))) / 1.6
    hi = max(max(ratios), *(b["target"] for b in bars if b.get("target"))) * 2.2
    left, right = min(lo, 0.25), max(hi, 4)
    ax.set_xlim(left, right)
    ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
             if left <= t <= right]
    ax.set_xticks(ticks, [f"{t:g}×" for t in ticks], fontsize=8.5)
    ax.minorticks_off()
    ax.axvline(1.0, color="#444444", lw=0.8, ls="--", zorder=0)
    for y, b in zip(ys, bars, strict=True):
        if b.get("target"):
            ax.plot([b["target"]] * 2, [y - 0.42, y + 0.42], color="black", lw=2.2,
                    solid_capstyle="butt", zorder=3)
        x = max(b["ratio"], b.get("target") or 0) * 1.06  # right of the bar and its tick
        ax.text(x, y, f"{b['ratio']:.2f}×", va="center", fontsize=8.5)
    ax.set_yticks(list(ys), labels, fontsize=9)
    ax.set_xlabel("ratio (log scale)    black tick: target    dashed: 1×", fontsize=9)
    ax.xaxis.grid(True, color="#e6e6e6", lw=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    from matplotlib.patches import Patch

    ax.legend(
        handles=[Patch(color=COLOURS["PASS"], label="target met"),
                 Patch(color=COLOURS["MISS"], label="target missed"),
                 Patch(color=INFO, label="informational / not judged here")],
        loc="lower right", fontsize=8, frameon=False,
    )
    ax.set_title(results.get("title", "ahcore / plain aiohttp"), fontsize=10.5)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_RESULTS
    if not src.exists():
        print(f"no results in {src}: run bench/run.py first")
        return 1
    results = json.loads(src.read_text("utf-8"))
    if len(sys.argv) > 2:
        out = Path(sys.argv[2])
    elif len(sys.argv) > 1:
        out = DEFAULT_CHART
    elif results.get("chart"):
        out = Path(results["chart"])  # where the run meant its chart to go
    else:
        print("no chart for the last run (--quick, --only or --no-chart); "
              "python bench/chart.py RESULTS.json OUT.png draws one anyway")
        return 0
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is not installed (pip install matplotlib, or nox -s bench_chart)")
        return 1
    draw(results, out)
    print(f"chart written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
