// Draws pass@k and sel@k against k from the JSON the view embeds with json_script.
// Runs on page load and after htmx swaps in the finished results.
(function () {
  "use strict";
  var palette = ["#2456c7", "#c7243a", "#1e7b34", "#b36b00", "#6b2ac7", "#00838f", "#5d4037"];

  function draw() {
    var canvas = document.getElementById("passk-chart");
    var source = document.getElementById("passk-data");
    if (!canvas || !source || typeof Chart === "undefined" || canvas.dataset.drawn) return;
    var data = JSON.parse(source.textContent);
    var datasets = data.series.map(function (s, i) {
      var colour = palette[Math.floor(i / 2) % palette.length];
      return {
        label: s.label,
        data: s.points.map(function (p) { return { x: p.k, y: p.value }; }),
        borderColor: colour,
        backgroundColor: colour,
        borderDash: s.metric === "sel_at_k" ? [6, 4] : [],
        tension: 0.15,
      };
    });
    new Chart(canvas, {
      type: "line",
      data: { datasets: datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: {
          x: { type: "logarithmic", title: { display: true, text: "k (samples)" },
               ticks: { callback: function (v) { return data.k_values.indexOf(v) >= 0 ? v : ""; } } },
          y: { min: 0, max: 1, title: { display: true, text: "accuracy" } },
        },
        plugins: { legend: { position: "right" } },
      },
    });
    canvas.dataset.drawn = "1";
  }

  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("htmx:afterSettle", draw);
  window.addEventListener("load", draw);
})();
