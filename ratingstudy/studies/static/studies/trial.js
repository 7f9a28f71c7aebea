// Trial and practice-feedback pages: when the image (or a 2AFC pair of images) is shown and hidden
// (timed studies: fixation cross, exposure, backward mask), keyboard answers, one submission carrying
// the browser's timings. Knows nothing about an image but its opaque URL.
//
// One request per answer: the answer is posted with the X-Rating-Fragment header and the reply is the
// next trial's page body, swapped in place (no new page, no second request); a reply naming another
// address (X-Rating-Location: practice feedback, the thank-you page) is followed. Without this script,
// or when the request fails, the form posts the plain way and the server redirects.
import { disableMarking, enableMarking } from "./marks.js";
import { openViewer } from "./viewer.js";

/** The backward mask is drawn in blocks of this many CSS pixels. */
const NOISE_BLOCK_PX = 4;

// A page brought back by the back button shows a trial that may be answered already: ask the server.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) window.location.reload();
});

const FRAGMENT_HEADER = "X-Rating-Fragment";
const LOCATION_HEADER = "X-Rating-Location";

// The trial on the page now; initTrial() sets them again for each trial swapped in.
let stages = [];
let stage = null; // timing attributes are the same on every stage of a trial
let form = null;
let continueLink = null;
let submitButton = null;
// origin: performance.now() when this trial was asked for (0: the page's navigation; else the answer's post).
let state = { origin: 0, shownAt: null, paintMs: null, maskedAt: null, masked: false };
let viewers = [];
let timers = [];

/** The highest magnification reached in any of the trial's viewers, and the longest time zoomed in. */
function zoomMax() {
  const values = viewers.map((v) => v.zoomMax).filter((v) => v !== null);
  return values.length ? Math.max(...values) : null;
}
function zoomedMs() {
  return viewers.length ? Math.max(...viewers.map((v) => v.zoomedMs)) : null;
}

window.ratingState = Object.freeze({
  get origin() { return state.origin; },
  get shownAt() { return state.shownAt; },
  get paintMs() { return state.paintMs; },
  get zoomMax() { return zoomMax(); },
  get zoomedMs() { return zoomedMs(); },
  get masked() { return state.masked; },
  get onscreenMs() { return onscreenMs(); },
});

/** Fill the canvas with coloured noise, fresh on every call. */
function paintNoise(canvas, stage) {
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
  for (const each of stages) {
    paintNoise(each.querySelector("canvas.mask"), each);
    each.querySelector("canvas.mask").hidden = false;
    each.querySelector(".hidden-note:not(.load-error)").hidden = false;
  }
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

function later(callback, ms) {
  timers.push(window.setTimeout(callback, ms));
}

function startTrial() {
  const exposureMs = parseInt(stage.dataset.exposureMs, 10) || 0;
  const fixationMs = parseInt(stage.dataset.fixationMs, 10) || 0;
  const fixations = stages.map((each) => each.querySelector(".fixation"));

  if (stage.dataset.windowClosed === "1") {
    // The server no longer serves this image: answer from memory.
    for (const each of stages) each.querySelector(".viewer-tools").hidden = true;
    showMask();
    enableAnswer();
    return;
  }

  let painted = 0;
  let fixationOver = !exposureMs;

  // Every image of the trial (one, or a 2AFC pair) appears at the same moment, and is masked together.
  function show() {
    if (state.shownAt !== null || painted < stages.length || !fixationOver) return;
    const now = performance.now();
    for (const fixation of fixations) fixation.hidden = true;
    state.shownAt = now;
    for (const viewer of viewers) viewer.show(now);
    enableAnswer();
    if (exposureMs) later(mask, exposureMs);
  }

  function mask() {
    showMask();
    const now = performance.now();
    state.maskedAt = now;
    for (const viewer of viewers) viewer.hide(now);
  }

  viewers = stages.map((each) =>
    openViewer(each, {
      onFirstPaint(now) {
        state.paintMs = Math.max(state.paintMs ?? 0, now - state.origin);
        painted += 1;
        show();
        const next = each.dataset.nextImageUrl;
        if (next && !exposureMs) new Image().src = next; // untimed: the server lets the browser cache it
      },
      onError() {
        for (const fixation of fixations) fixation.hidden = true;
        each.querySelector(".load-error").hidden = false;
      },
    }),
  );
  window.ratingViewer = viewers[0].viewer;
  window.ratingViewers = viewers.map((v) => v.viewer);

  if (exposureMs) {
    // The images load during the fixation cross; they appear once both are done.
    for (const fixation of fixations) fixation.hidden = false;
    later(() => {
      fixationOver = true;
      show();
    }, fixationMs);
  }
}

function setField(name, value) {
  const field = form.elements.namedItem(name);
  if (field) field.value = value === null ? "" : String(Math.round(value * 1000) / 1000);
}

/** Replace the trial on the page with the reply's body (the next trial, or this one with its errors). */
function swapTrial(html, origin) {
  const root = document.getElementById("trial-root");
  endTrial();
  root.innerHTML = html;
  const body = root.querySelector(".trial-body");
  if (body?.dataset.title) document.title = body.dataset.title;
  initTrial(root, origin);
}

/** Send the answer and show what comes back; on any failure, post the form the plain way instead. */
async function sendAnswer(origin) {
  let reply;
  try {
    reply = await fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { [FRAGMENT_HEADER]: "1" },
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    reply = null;
  }
  const elsewhere = reply?.headers.get(LOCATION_HEADER);
  if (elsewhere) {
    window.location.assign(elsewhere);
  } else if (reply && (reply.status === 200 || reply.status === 400)) {
    swapTrial(await reply.text(), origin);
  } else {
    // A network failure, a refusal or a server error: the plain post shows the server's own page. A resent
    // answer is kept once (the server keeps the first answer to a trial).
    HTMLFormElement.prototype.submit.call(form);
  }
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
    if (!state.masked) for (const viewer of viewers) viewer.stopRecording(now);
    const shown = state.shownAt;
    setField("client_ms", shown === null ? null : Math.round(now - shown));
    const onscreen = onscreenMs(now);
    setField("onscreen_ms", onscreen === null ? null : Math.round(onscreen));
    setField("paint_ms", state.paintMs === null ? null : Math.round(state.paintMs));
    setField("zoom_max", zoomMax());
    setField("zoomed_ms", viewers.length && shown !== null ? Math.round(zoomedMs()) : null);
    submitButton.disabled = true;
    if (window.fetch && document.getElementById("trial-root")) {
      event.preventDefault();
      sendAnswer(now);
    }
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
  // A key may serve two answers that are never shown together (e.g. the subtypes of each diagnosis).
  const radio = Array.from(form.querySelectorAll(`input[data-key="${event.key.toLowerCase()}"]`)).find(
    (input) => !input.closest("[hidden]"),
  );
  if (radio) {
    event.preventDefault();
    radio.checked = true;
    radio.dispatchEvent(new Event("change", { bubbles: true }));
  }
});

/** Diagnosis with subtypes: only the chosen diagnosis's subtypes are offered. */
function wireSubtypes() {
  const groups = Array.from(form.querySelectorAll("fieldset.subtypes"));
  if (!groups.length) return;
  const update = () => {
    const diagnosis = form.querySelector("input[name=diagnosis]:checked")?.value;
    for (const group of groups) {
      const shown = group.dataset.diagnosis === diagnosis;
      group.hidden = !shown;
      for (const input of group.querySelectorAll("input")) {
        input.disabled = !shown;
        if (!shown) input.checked = false;
      }
    }
  };
  form.addEventListener("change", (event) => {
    if (event.target.name === "diagnosis") update();
  });
  update();
}


/** The "mark" task: once the image is shown, answering "generated" opens the marking tools. */
function wireMarks() {
  const tools = form.querySelector("#marks-tools");
  if (!tools) return;
  const output = tools.querySelector("input[name=marks]");
  const update = () => {
    const generated = form.querySelector("input[name=judged_real]:checked")?.value === "generated";
    if (generated && state.shownAt !== null && !state.masked && window.ratingViewer) {
      enableMarking(window.ratingViewer, { container: tools, output });
    } else {
      disableMarking();
      output.value = "[]";
    }
  };
  form.addEventListener("change", (event) => {
    if (event.target.name === "judged_real") update();
  });
}

/** The trial leaves the page: stop its timers, close its viewers and marking. */
function endTrial() {
  for (const timer of timers) window.clearTimeout(timer);
  timers = [];
  disableMarking();
  for (const each of viewers) each.destroy();
  viewers = [];
}

/** Start the trial (or practice feedback) found under root. */
function initTrial(root, origin = 0) {
  stages = Array.from(root.querySelectorAll(".stage"));
  stage = stages[0] ?? null;
  form = root.querySelector("#answer-form");
  continueLink = root.querySelector("#continue");
  submitButton = form?.querySelector("button[type=submit]") ?? null;
  state = { origin, shownAt: null, paintMs: null, maskedAt: null, masked: false };
  if (form) {
    wireSubtypes();
    wireMarks();
    wireAnswerForm();
  }
  if (continueLink) continueLink.focus();
  if (stage) startTrial();
}

initTrial(document);
