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
      if (source && source.readyState === EventSource.CLOSED) {  // not reconnecting: back to polling
        source = null;
        refresh(false);
      }
    };
  }

  document.addEventListener("DOMContentLoaded", follow);
  document.addEventListener("htmx:afterSettle", follow);
})();
