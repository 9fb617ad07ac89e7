// Upload forms (`form[data-upload]`): the file goes to the form's API action with the page's session and CSRF
// token, its progress shown as it is sent and while the platform checks it; then the run it started (a link to
// its live page), or the error naming what in the file was refused. Without JavaScript the form posts plainly
// and the API's JSON answer is shown.
(function () {
  "use strict";

  function text(tag, content, className) {
    const node = document.createElement(tag);
    node.textContent = content;
    if (className) { node.className = className; }
    return node;
  }

  function counts(upload) {
    const perDigit = Object.keys(upload.class_counts).filter(function (d) { return upload.class_counts[d]; })
      .map(function (d) { return d + ": " + upload.class_counts[d]; }).join(" · ");
    return upload.count + " images" + (upload.labelled ? " (" + upload.labelled + " labelled" +
      (perDigit ? "; " + perDigit : "") + ")" : ", none labelled");
  }

  function answered(form, xhr) {
    const result = form.querySelector(".upload-result");
    let body = null;
    try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
    result.replaceChildren();
    if (xhr.status === 202 && body && body.id) {
      const line = text("p", "Accepted " + (body.upload.files.map(function (f) { return f.name; }).join(" + ")) +
        ": " + counts(body.upload) + ". ", "ok");
      const link = text("a", (body.kind === "infer" ? "Scoring" : "Collecting") + " in run #" + body.id + " →");
      link.href = "/runs/" + body.id;
      line.appendChild(link);
      result.appendChild(line);
      form.reset();
      return;
    }
    const message = body && body.error ? body.error.message : "The upload failed (" + (xhr.status || "no answer") + ").";
    result.appendChild(text("p", message, "alert"));
    result.lastChild.setAttribute("role", "alert");
  }

  function send(form) {
    const progress = form.querySelector(".upload-progress");
    const bar = progress.querySelector("progress");
    const said = progress.querySelector("span");
    const button = form.querySelector("button[type=submit]");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-CSRFToken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = function (event) {
      if (!event.lengthComputable) { return; }
      const percent = Math.round(100 * event.loaded / event.total);
      bar.value = percent;
      said.textContent = percent < 100 ? "sending " + percent + " %" : "checking the file…";
    };
    xhr.onloadend = function () {
      button.disabled = false;
      progress.hidden = true;
      answered(form, xhr);
    };
    button.disabled = true;
    bar.value = 0;
    said.textContent = "sending…";
    progress.hidden = false;
    form.querySelector(".upload-result").replaceChildren();
    xhr.send(new FormData(form));
  }

  document.addEventListener("submit", function (event) {
    const form = event.target.closest("form[data-upload]");
    if (!form) { return; }
    event.preventDefault();
    send(form);
  });
}());
