// Marking what gave a generated image away: points and boxes drawn with Annotorious on the OpenSeadragon
// viewer (window.AnnotoriousOSD, a classic script loaded after OpenSeadragon), written to a hidden input as
// JSON in normalised image coordinates: 0..1 of the image's width and height, x right, y down.
//
// Annotorious has no point tool, so a point is a small square added on a click; its centre is the point.

/** A point is drawn as a square this many CSS pixels wide at the zoom it was placed at. */
const POINT_PX = 10;
/** Coordinates are written with this many decimals (1e-4 of a 10,000-pixel image is one pixel). */
const DECIMALS = 4;
const MODE_KEYS = { p: "point", P: "point", b: "box", B: "box" };
const POINT_TAG = "point";

const POINT_STYLE = { fill: "#ffd400", fillOpacity: 0.9, stroke: "#111111", strokeWidth: 2 };
const BOX_STYLE = { fill: "#ffd400", fillOpacity: 0.12, stroke: "#ffd400", strokeWidth: 2 };

let active = null;
let pointsAdded = 0;

const isPoint = (annotation) => annotation.bodies.some((body) => body.purpose === "tagging" && body.value === POINT_TAG);
const clamp = (value) => Math.min(1, Math.max(0, value));
const round = (value) => Number(value.toFixed(DECIMALS));

function isTextField(target) {
  return target instanceof Element && target.closest("textarea, select, [contenteditable], input:not([type=radio], [type=checkbox], [type=button])") !== null;
}

const TOOLBAR = `
  <button type="button" data-mode="point" aria-pressed="false">Point <kbd>P</kbd></button>
  <button type="button" data-mode="box" aria-pressed="false">Box <kbd>B</kbd></button>
  <button type="button" data-action="delete" disabled>Delete <kbd>Del</kbd></button>
  <button type="button" data-action="clear" disabled>Clear all</button>`;

/**
 * Let the rater mark regions on the viewer's (open) image: points, a click in point mode, and boxes, a drag
 * in box mode. A toolbar is added to `container`, which is shown until disable(): keys P and B switch the
 * modes on and off, Escape leaves them, Delete or Backspace removes the selected mark. Every change writes
 * the marks to the hidden input `output` as JSON, `[{"type": "point", x, y}, {"type": "box", x, y, w, h}]`
 * (upper-left corner, width and height, clamped to the image), and calls onChange(marks).
 *
 * While a mode is on, a drag draws (box) or does nothing (point) instead of panning; with no mode, a drag
 * pans and a click selects a mark. Returns { setMode, disable, marks }: setMode("point" | "box" | null),
 * where the mode that is on switches it off. Marking is one per page: a second call returns the active one.
 */
export function enableMarking(viewer, { container, output, onChange = () => {} }) {
  if (active) return active;
  const OSD = window.OpenSeadragon;
  const anno = window.AnnotoriousOSD.createOSDAnnotator(viewer, {
    drawingEnabled: false,
    drawingMode: "drag",
    style: (annotation) => (isPoint(annotation) ? POINT_STYLE : BOX_STYLE),
  });
  anno.setDrawingTool("rectangle");
  // Annotorious turns OpenSeadragon's mouse on and off as it draws; with no drawing mode it should be as the
  // viewer left it: on while the image is open (viewer.js's hide() closes it). OpenSeadragon 6.1.1's
  // isMouseNavEnabled() always answers undefined, so it cannot simply be saved and restored.
  const restorePanning = () => viewer.setMouseNavEnabled(viewer.world.getItemCount() > 0);
  restorePanning();

  const toolbar = document.createElement("div");
  toolbar.className = "mark-tools";
  toolbar.setAttribute("role", "toolbar");
  toolbar.setAttribute("aria-label", "Mark what gave it away");
  toolbar.innerHTML = TOOLBAR;
  container.append(toolbar);
  container.hidden = false;
  const modeButtons = Array.from(toolbar.querySelectorAll("[data-mode]"));
  const deleteButton = toolbar.querySelector("[data-action=delete]");
  const clearButton = toolbar.querySelector("[data-action=clear]");

  let mode = null;
  let written = null;

  const imageSize = () => viewer.world.getItemAt(0).getContentSize();
  const toImage = (point) => viewer.viewport.viewerElementToImageCoordinates(point);

  /** One annotation as a mark in normalised image coordinates, or null when it lies outside the image. */
  function toMark(annotation) {
    const { x: width, y: height } = imageSize();
    const { minX, minY, maxX, maxY } = annotation.target.selector.geometry.bounds;
    if (isPoint(annotation)) {
      const x = (minX + maxX) / 2 / width;
      const y = (minY + maxY) / 2 / height;
      return { type: "point", x: round(clamp(x)), y: round(clamp(y)) };
    }
    const [x0, x1] = [round(clamp(minX / width)), round(clamp(maxX / width))];
    const [y0, y1] = [round(clamp(minY / height)), round(clamp(maxY / height))];
    if (x1 <= x0 || y1 <= y0) return null;
    return { type: "box", x: x0, y: y0, w: round(x1 - x0), h: round(y1 - y0) };
  }

  function write() {
    const marks = anno.getAnnotations().map(toMark).filter(Boolean);
    clearButton.disabled = marks.length === 0;
    deleteButton.disabled = anno.getSelected().length === 0;
    const json = JSON.stringify(marks);
    if (json === written) return;
    written = json;
    output.value = json;
    onChange(marks);
  }

  function setMode(next) {
    mode = next === mode ? null : next;
    anno.cancelSelected();
    anno.setDrawingEnabled(mode === "box"); // Annotorious turns OpenSeadragon's drag-to-pan off while drawing
    for (const button of modeButtons) button.setAttribute("aria-pressed", String(button.dataset.mode === mode));
  }

  function addPoint(position) {
    const centre = toImage(position);
    const { x: width, y: height } = imageSize();
    if (centre.x < 0 || centre.y < 0 || centre.x > width || centre.y > height) return;
    if (anno.state.store.getAt(centre.x, centre.y)) return; // a click on a mark selects it
    const half = toImage(position.plus(new OSD.Point(POINT_PX / 2, POINT_PX / 2))).minus(centre);
    const [minX, minY, maxX, maxY] = [centre.x - half.x, centre.y - half.y, centre.x + half.x, centre.y + half.y];
    const id = `point-${++pointsAdded}`; // unique in the page is enough
    anno.state.store.addAnnotation({
      id,
      bodies: [{ id: `${id}-type`, annotation: id, purpose: "tagging", value: POINT_TAG }],
      target: {
        annotation: id,
        selector: { type: "RECTANGLE", geometry: { x: minX, y: minY, w: maxX - minX, h: maxY - minY, bounds: { minX, minY, maxX, maxY } } },
        creator: anno.getUser(),
        created: new Date(),
      },
    });
  }

  function deleteSelected() {
    const selected = anno.getSelected();
    anno.cancelSelected();
    for (const annotation of selected) anno.removeAnnotation(annotation.id);
  }

  const handlers = {
    "canvas-click": (event) => {
      if (mode === "point" && event.quick) addPoint(event.position);
    },
    // In point mode a drag must not pan (a click with a tremor would move the image under the point).
    "canvas-drag": (event) => {
      if (mode === "point") event.preventDefaultAction = true;
    },
  };

  function onKeyDown(event) {
    if (event.altKey || event.ctrlKey || event.metaKey || isTextField(event.target)) return;
    if (MODE_KEYS[event.key]) {
      event.preventDefault();
      setMode(MODE_KEYS[event.key]);
    } else if (event.key === "Escape" && mode) {
      setMode(null);
    } else if ((event.key === "Delete" || event.key === "Backspace") && anno.getSelected().length) {
      event.preventDefault();
      deleteSelected();
    }
  }

  for (const [name, handler] of Object.entries(handlers)) viewer.addHandler(name, handler);
  document.addEventListener("keydown", onKeyDown);
  anno.state.store.observe(write);
  anno.on("selectionChanged", write);
  // A box drawn wholly outside the image marks nothing: take it away again.
  anno.on("createAnnotation", (annotation) => {
    if (!toMark(annotation)) queueMicrotask(() => anno.removeAnnotation(annotation.id));
  });
  for (const button of toolbar.querySelectorAll("button")) {
    button.addEventListener("mousedown", (event) => event.preventDefault()); // keep the focus, so Enter answers
  }
  for (const button of modeButtons) button.addEventListener("click", () => setMode(button.dataset.mode));
  deleteButton.addEventListener("click", deleteSelected);
  clearButton.addEventListener("click", () => {
    anno.cancelSelected();
    anno.clearAnnotations();
  });
  write();

  active = {
    setMode,
    get marks() {
      return JSON.parse(output.value);
    },
    /** Remove every mark and the toolbar, hide the container, empty the output, let the mouse pan again. */
    disable() {
      for (const [name, handler] of Object.entries(handlers)) viewer.removeHandler(name, handler);
      document.removeEventListener("keydown", onKeyDown);
      anno.state.store.unobserve(write);
      anno.destroy();
      toolbar.remove();
      container.hidden = true;
      restorePanning();
      output.value = "";
      active = null;
      onChange([]);
    },
  };
  return active;
}

/** Stop marking (the rater took back "generated"): the marks are dropped and the output emptied. */
export function disableMarking() {
  active?.disable();
}
