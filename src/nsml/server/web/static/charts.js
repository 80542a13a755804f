// Small multiples: one small Chart.js line chart per metric, every session in its own colour.
"use strict";

class SmallMultiples {
  constructor(container) {
    this.container = container;
    this.charts = new Map();  // metric key -> Chart
  }

  // series: [{ name, color, points: [{ key, step, value }] }]; returns the metric keys drawn
  draw(series) {
    const keys = [...new Set(series.flatMap((s) => s.points.filter((p) => p.value !== null).map((p) => p.key)))];
    // learning curves (train/loss, valid/accuracy) first, counters such as epoch last
    const curve = (k) => (k.includes("/") || /loss|acc|score|f1|auc/i.test(k) ? 0 : 1);
    keys.sort((a, b) => curve(a) - curve(b) || a.localeCompare(b));
    for (const key of keys) {
      const datasets = series.map((s) => ({
        label: s.name,
        data: s.points.filter((p) => p.key === key && p.value !== null).map((p) => ({ x: p.step, y: p.value })),
        borderColor: s.color, backgroundColor: s.color, borderWidth: 1.5, pointRadius: 2, tension: 0.15,
      }));
      let chart = this.charts.get(key);
      if (!chart) {
        const canvas = el("canvas");
        const card = el("figure", { class: "chart-card", "data-metric": key },
          el("figcaption", {}, key), el("div", { class: "chart-box" }, canvas));
        this.container.append(card);
        chart = new Chart(canvas, {
          type: "line",
          data: { datasets },
          options: {
            animation: false, parsing: false, maintainAspectRatio: false,
            plugins: { legend: { display: false } },
            interaction: { mode: "nearest", intersect: false },
            scales: { x: { type: "linear", title: { display: true, text: "step" }, ticks: { precision: 0 } } },
          },
        });
        this.charts.set(key, chart);
      } else {
        chart.data.datasets = datasets;
        chart.update();
      }
      chart.canvas.dataset.points = String(datasets[0].data.length);
    }
    return keys;
  }
}
