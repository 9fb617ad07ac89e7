// Class-distribution bar charts: each [data-chart] element names the JSON script holding {x, y}.
(function () {
  if (!window.Plotly) return;
  document.querySelectorAll("[data-chart]").forEach((element) => {
    const source = document.getElementById(element.dataset.chart);
    if (!source) return;
    const data = JSON.parse(source.textContent);
    Plotly.newPlot(element, [{ type: "bar", x: data.x, y: data.y, marker: { color: "#3559e0" },
                               hovertemplate: "class %{x}: %{y}<extra></extra>" }],
      { margin: { l: 40, r: 10, t: 10, b: 30 }, height: 180, xaxis: { type: "category", title: "" },
        yaxis: { rangemode: "tozero" }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)" },
      { displayModeBar: false, responsive: true });
  });
})();
