// The Jupyter entry (anywidget): the same drawing code as the app, concatenated before this file
// into one ES module (viz/notebook.py). The widget's "payload" trait holds the app's bytes; a
// clicked head becomes the model's "layer" and "head" (and, in the head view, "heads": the heads
// whose lines are shown), sent back to Python. "heads" set from Python redraws the head view.

function payloadBytes(value) {
  if (!value) return null;
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  return new Uint8Array(value); // an ArrayBuffer
}

function render({ model, el }) {
  const root = () => el.querySelector(".atv-root");
  const shownHeads = () => {
    const visible = root()?.__ui?.visible;
    return visible ? Array.from(visible).sort((a, b) => a - b) : [];
  };
  const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
  // the selection as the model holds it, readable from the page (tests, screenshots)
  const reflect = () => {
    el.dataset.selection = JSON.stringify({
      layer: model.get("layer"),
      head: model.get("head"),
      heads: model.get("heads"),
    });
  };
  const syncHeads = () => {
    if (model.get("view") !== "head") return false;
    const heads = shownHeads();
    if (same(heads, model.get("heads") || [])) return false;
    model.set("heads", heads);
    return true;
  };
  const setStateValue = (name, value) => {
    if (name !== "selected" || !value) return;
    model.set("layer", value.layer);
    model.set("head", value.head);
    syncHeads();
    model.save_changes();
  };
  const draw = () => {
    drawAttentionView({ data: payloadBytes(model.get("payload")), parentElement: el, setStateValue });
  };
  // double-clicking a swatch shows that head alone without a click of its own
  const onDoubleClick = (event) => {
    if (event.target.closest(".atv-swatch") && syncHeads()) model.save_changes();
  };
  const onHeads = () => {
    const wanted = model.get("heads") || [];
    const ui = root()?.__ui;
    if (model.get("view") === "head" && ui && !same(wanted, shownHeads())) {
      ui.visible = new Set(wanted);
      delete root().dataset.viewId; // same bytes, other heads: draw again
      draw();
    }
    reflect();
  };
  el.addEventListener("dblclick", onDoubleClick);
  model.on("change:payload", draw);
  model.on("change:heads", onHeads);
  model.on("change:layer", reflect);
  model.on("change:head", reflect);
  draw();
  onHeads();
  return () => {
    el.removeEventListener("dblclick", onDoubleClick);
    model.off("change:payload", draw);
    model.off("change:heads", onHeads);
    model.off("change:layer", reflect);
    model.off("change:head", reflect);
  };
}

export default { render };
