// Draws every <canvas data-chart="bar" data-series-id="ID"> from the JSON in <script id="ID">.
(function () {
  function draw() {
    if (!window.Chart) return;
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var source = document.getElementById(canvas.dataset.seriesId);
      if (!source) return;
      var data = JSON.parse(source.textContent);
      new window.Chart(canvas, {
        type: canvas.dataset.chart,
        data: { labels: data.labels, datasets: [{ data: data.values, backgroundColor: "#4f46e5", borderRadius: 4 }] },
        options: {
          plugins: { legend: { display: false } },
          scales: { y: { beginAtZero: true, ticks: { precision: 0 } }, x: { grid: { display: false } } },
          animation: false,
        },
      });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
