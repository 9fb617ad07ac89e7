// Charts: each [data-chart] element names a JSON script holding {traces, layout}; drawn on load
// and again whenever htmx swaps new content in (live training progress).
(function () {
  function draw(root) {
    if (!window.Plotly) return;
    root.querySelectorAll("[data-chart]").forEach((element) => {
      const source = document.getElementById(element.dataset.chart);
      if (!source) return;
      const spec = JSON.parse(source.textContent);
      const layout = Object.assign({ margin: { l: 44, r: 12, t: 10, b: 34 }, height: 200, showlegend: spec.traces.length > 1,
        legend: { orientation: "h", y: -0.25 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)" }, spec.layout || {});
      Plotly.react(element, spec.traces, layout, { displayModeBar: false, responsive: true });
    });
  }
  draw(document);
  document.body.addEventListener("htmx:afterSwap", (event) => draw(event.detail.target.parentElement || document));
})();
