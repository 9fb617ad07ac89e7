// The run page follows its run's server-sent events (GET /api/runs/{id}/events): each event re-renders the panel at
// once, and the panel stops polling. Where EventSource is missing, or the stream is lost for good, the panel polls
// every 2 s as before (the server renders the polling trigger unless the refresh says `live=1`).
(function () {
  "use strict";
  if (!window.EventSource) { return; }
  let source = null;

  function refresh(live) {
    const panel = document.querySelector(".run-panel[data-events]");
    if (panel) {
      htmx.ajax("GET", panel.dataset.panel + (live ? "?live=1" : ""), { target: panel, swap: "outerHTML" });
    }
  }

  function follow() {
    const panel = document.querySelector(".run-panel[data-events]");
    if (!panel || source || !window.htmx) { return; }  // htmx loads deferred: by DOMContentLoaded it is there
    source = new EventSource(panel.dataset.events);
    source.addEventListener("progress", function () { refresh(true); });
    source.addEventListener("end", function () {
      source.close();
      source = null;
      refresh(true);
    });
    source.onerror = function () {
      if (source && source.readyState === EventSource.CLOSED) {  // not reconnecting: the panel polls again
        source = null;
        const current = document.querySelector(".run-panel[data-events]");
        if (current) {
          current.setAttribute("hx-get", current.dataset.panel);
          current.setAttribute("hx-trigger", "every 2s");
          current.setAttribute("hx-swap", "outerHTML");
          current.removeAttribute("data-events");  // and the swapped-in panel follows the events again
          htmx.process(current);
        }
      }
    };
  }

  document.addEventListener("DOMContentLoaded", follow);
  document.addEventListener("htmx:afterSettle", follow);
})();
