// Trial and practice-feedback pages: when the image is shown and hidden (timed studies: fixation cross,
// exposure, backward mask), keyboard answers, one submission carrying the browser's timings.
// Knows nothing about the image but its opaque URL.
import { openViewer } from "./viewer.js";

/** The backward mask is drawn in blocks of this many CSS pixels. */
const NOISE_BLOCK_PX = 4;

// A page brought back by the back button shows a trial that may be answered already: ask the server.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) window.location.reload();
});

const stage = document.getElementById("stage");
const form = document.getElementById("answer-form");
const continueLink = document.getElementById("continue");
const submitButton = form?.querySelector("button[type=submit]");

const state = { shownAt: null, paintMs: null, maskedAt: null, masked: false };
let viewer = null;

window.ratingState = Object.freeze({
  get shownAt() { return state.shownAt; },
  get paintMs() { return state.paintMs; },
  get zoomMax() { return viewer?.zoomMax ?? null; },
  get zoomedMs() { return viewer?.zoomedMs ?? null; },
  get masked() { return state.masked; },
  get onscreenMs() { return onscreenMs(); },
});

/** Fill the canvas with coloured noise, fresh on every call. */
function paintNoise(canvas) {
  const width = Math.max(1, Math.ceil(stage.clientWidth / NOISE_BLOCK_PX));
  const height = Math.max(1, Math.ceil(stage.clientHeight / NOISE_BLOCK_PX));
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(width, height);
  const data = pixels.data;
  const chunk = 65536; // getRandomValues refuses more bytes at once
  for (let start = 0; start < data.length; start += chunk) {
    crypto.getRandomValues(data.subarray(start, Math.min(start + chunk, data.length)));
  }
  for (let alpha = 3; alpha < data.length; alpha += 4) data[alpha] = 255;
  context.putImageData(pixels, 0, 0);
}

function showMask() {
  paintNoise(stage.querySelector("canvas.mask"));
  stage.querySelector("canvas.mask").hidden = false;
  stage.querySelector(".hidden-note:not(.load-error)").hidden = false;
  state.masked = true;
}

/** Milliseconds the image has been on screen: until the mask, or until now. */
function onscreenMs(now = performance.now()) {
  if (state.shownAt === null) return null;
  return (state.maskedAt ?? now) - state.shownAt;
}

function enableAnswer() {
  if (submitButton) submitButton.disabled = false;
}

function startTrial() {
  const exposureMs = parseInt(stage.dataset.exposureMs, 10) || 0;
  const fixationMs = parseInt(stage.dataset.fixationMs, 10) || 0;
  const fixation = stage.querySelector(".fixation");

  if (stage.dataset.windowClosed === "1") {
    // The server no longer serves this image: answer from memory.
    stage.querySelector(".viewer-tools").hidden = true;
    showMask();
    enableAnswer();
    return;
  }

  let painted = false;
  let fixationOver = !exposureMs;

  function show() {
    if (state.shownAt !== null || !painted || !fixationOver) return;
    const now = performance.now();
    fixation.hidden = true;
    state.shownAt = now;
    viewer.show(now);
    enableAnswer();
    if (exposureMs) window.setTimeout(mask, exposureMs);
  }

  function mask() {
    showMask();
    const now = performance.now();
    state.maskedAt = now;
    viewer.hide(now);
  }

  viewer = openViewer(stage, {
    onFirstPaint(now) {
      state.paintMs = now;
      painted = true;
      show();
      const next = stage.dataset.nextImageUrl;
      if (next && !exposureMs) new Image().src = next; // untimed: the server lets the browser cache it
    },
    onError() {
      fixation.hidden = true;
      stage.querySelector(".load-error").hidden = false;
    },
  });
  window.ratingViewer = viewer.viewer;

  if (exposureMs) {
    // The image loads during the fixation cross; it appears once both are done.
    fixation.hidden = false;
    window.setTimeout(() => {
      fixationOver = true;
      show();
    }, fixationMs);
  }
}

function setField(name, value) {
  const field = form.elements.namedItem(name);
  if (field) field.value = value === null ? "" : String(Math.round(value * 1000) / 1000);
}

function wireAnswerForm() {
  submitButton.disabled = true; // no answer before the image is on screen
  let sent = false;
  form.addEventListener("submit", (event) => {
    const windowClosed = stage.dataset.windowClosed === "1";
    if (sent || (state.shownAt === null && !windowClosed)) {
      event.preventDefault();
      return;
    }
    sent = true;
    const now = performance.now();
    if (viewer && !state.masked) viewer.stopRecording(now);
    const shown = state.shownAt;
    setField("client_ms", shown === null ? null : Math.round(now - shown));
    const onscreen = onscreenMs(now);
    setField("onscreen_ms", onscreen === null ? null : Math.round(onscreen));
    setField("paint_ms", state.paintMs === null ? null : Math.round(state.paintMs));
    setField("zoom_max", viewer?.zoomMax ?? null);
    setField("zoomed_ms", viewer && shown !== null ? Math.round(viewer.zoomedMs) : null);
    submitButton.disabled = true;
  });
}

function followsOwnActivation(target) {
  return target instanceof Element && target.closest("button, a") !== null;
}

document.addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey || event.repeat) return;
  if (event.key === "Enter") {
    if (followsOwnActivation(event.target)) return; // their own activation submits or follows
    if (form) {
      event.preventDefault();
      form.requestSubmit();
    } else if (continueLink) {
      event.preventDefault();
      continueLink.click();
    }
    return;
  }
  if (!form || !/^[a-z0-9]$/i.test(event.key)) return;
  const radio = form.querySelector(`input[data-key="${event.key.toLowerCase()}"]`);
  if (radio) {
    event.preventDefault();
    radio.checked = true;
  }
});

if (continueLink) continueLink.focus();
if (form) wireAnswerForm();
if (stage) startTrial();
