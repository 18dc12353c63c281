"""A server-rendered bar chart: geometry only, the SVG markup lives in the template.

No chart library and no JavaScript: the numbers are computed here, drawn by
templates/partners/_bar_chart.html, and also given as text (title, description, data table).
"""

from dataclasses import dataclass
from datetime import date

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 12, 28  # room for the axis labels


@dataclass(frozen=True)
class Bar:
    day: date
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Tick:
    value: int
    y: float


@dataclass(frozen=True)
class Label:
    day: date
    x: float


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    left: int
    bottom: float  # y of the x axis
    right: float  # x of the right end of the x axis
    bars: list[Bar]
    ticks: list[Tick]
    labels: list[Label]
    total: int
    busiest: Bar | None

    @property
    def days(self) -> int:
        return len(self.bars)

    @property
    def first_day(self) -> date | None:
        return self.bars[0].day if self.bars else None

    @property
    def last_day(self) -> date | None:
        return self.bars[-1].day if self.bars else None


def _nice_max(value: int) -> int:
    """The smallest 'round' number ≥ value (1, 2, 5, 10, 20, 50, …), so the gridlines read well."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def bar_chart(series: list[tuple[date, int]], *, label_every: int = 15) -> BarChart:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top_value = _nice_max(max((v for _, v in series), default=0) or 1)
    slot = plot_w / max(len(series), 1)
    gap = 1 if slot > 3 else 0
    bars = []
    for index, (day, value) in enumerate(series):
        h = plot_h * value / top_value
        bars.append(
            Bar(
                day=day,
                value=value,
                x=round(LEFT + index * slot + gap / 2, 2),
                y=round(TOP + plot_h - h, 2),
                width=round(slot - gap, 2),
                height=round(h, 2),
            )
        )
    ticks = [
        Tick(value=v, y=round(TOP + plot_h - plot_h * v / top_value, 2))
        for v in sorted({0, top_value // 2 if top_value % 2 == 0 else top_value, top_value})
    ]
    # Label the last day, then every `label_every` days back from it.
    labels = [
        Label(day=bars[i].day, x=round(bars[i].x + bars[i].width / 2, 2))
        for i in range(len(bars) - 1, -1, -label_every)
    ][::-1]
    busiest = max((b for b in bars if b.value), key=lambda b: b.value, default=None)
    return BarChart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        bottom=TOP + plot_h,
        right=WIDTH - RIGHT,
        bars=bars,
        ticks=ticks,
        labels=labels,
        total=sum(b.value for b in bars),
        busiest=busiest,
    )
