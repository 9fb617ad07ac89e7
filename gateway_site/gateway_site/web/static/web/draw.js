// The drawing pad: mouse, pen and touch strokes on a transparent canvas,
// exported as a PNG data URL into the form before it is sent.
(function () {
  const pad = document.getElementById("pad");
  if (!pad) return;
  const ctx = pad.getContext("2d");
  const pen = document.getElementById("pen");
  const form = document.getElementById("draw-form");
  const field = document.getElementById("image_data");
  let drawing = false, drawn = false, last = null;

  function point(event) {
    const box = pad.getBoundingClientRect();
    return { x: (event.clientX - box.left) * pad.width / box.width,
             y: (event.clientY - box.top) * pad.height / box.height };
  }
  function stroke(to) {
    ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.strokeStyle = "#111"; ctx.lineWidth = Number(pen.value);
    ctx.beginPath(); ctx.moveTo(last.x, last.y); ctx.lineTo(to.x, to.y); ctx.stroke();
    last = to; drawn = true;
  }
  pad.addEventListener("pointerdown", (e) => { drawing = true; last = point(e); pad.setPointerCapture(e.pointerId); stroke(point(e)); });
  pad.addEventListener("pointermove", (e) => { if (drawing) stroke(point(e)); });
  ["pointerup", "pointercancel", "pointerleave"].forEach((name) => pad.addEventListener(name, () => { drawing = false; }));
  document.getElementById("clear").addEventListener("click", () => {
    ctx.clearRect(0, 0, pad.width, pad.height); drawn = false; field.value = "";
  });
  function fill() { field.value = drawn ? pad.toDataURL("image/png") : ""; }
  form.addEventListener("submit", fill);
  document.body.addEventListener("htmx:configRequest", (e) => {
    if (e.detail.elt === form) { fill(); e.detail.parameters.set ? e.detail.parameters.set("image_data", field.value) : (e.detail.parameters["image_data"] = field.value); }
  });
})();
