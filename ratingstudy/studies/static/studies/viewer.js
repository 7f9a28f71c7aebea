// The trial image in a zoomable OpenSeadragon viewer (window.OpenSeadragon: a classic script loaded first).
// One request for the image, our own toolbar and keys, and a record of how far and how long the rater zoomed in.
//
// Magnification here is device pixels per image pixel: 1 is 1:1 (one image pixel on one device pixel),
// 2 shows every image pixel as 2x2 device pixels. OpenSeadragon's "image zoom" counts CSS pixels instead,
// hence the devicePixelRatio factor.

/** The deepest zoom, as a magnification: enough to inspect single pixels, not so far as to get lost. */
const MAX_MAGNIFICATION = 8;
/** Zoom beyond this multiple of the whole-image (home) zoom counts as zoomed in. */
const ZOOMED_IN_FACTOR = 1.05;
/** One press of + or - (OpenSeadragon's wheel step is 1.2, its click step 2). */
const ZOOM_STEP = 1.5;
/** One arrow press pans by this fraction of the visible field. */
const PAN_FRACTION = 0.1;

const KEY_ACTIONS = {
  "+": "in",
  "=": "in",
  "-": "out",
  0: "home",
  n: "native",
  N: "native",
  ArrowLeft: "left",
  ArrowRight: "right",
  ArrowUp: "up",
  ArrowDown: "down",
};

/** Text for the zoom readout, e.g. "0.50x", "1.00x". */
export function magnificationLabel(magnification) {
  return `${magnification.toFixed(2)}x`;
}

/**
 * Open the stage's image (data-image-url) in the stage's #viewer.
 *
 * The viewer starts inert (no zoom, no pan, toolbar disabled): the page calls show() when the image is
 * meant to be seen, which also starts the zoom record, and hide() when it is over.
 * onFirstPaint(ms) gets performance.now() when the image is first drawn on the canvas;
 * onError() is called when the image cannot be loaded.
 */
export function openViewer(stage, { onFirstPaint = () => {}, onError = () => {} } = {}) {
  const OSD = window.OpenSeadragon;
  const element = stage.querySelector(".viewer");
  const output = stage.querySelector(".zoom-level");
  const buttons = Array.from(stage.querySelectorAll("[data-zoom]"));

  class SingleTileCanvasDrawer extends OSD.CanvasDrawer {
    // The canvas drawer draws every tile one pixel larger to hide seams between tiles. This image is a
    // single tile, so that pixel would only stretch it (701 pixels for 700) and spoil 1:1.
    minimumOverlapRequired() {
      return false;
    }

    // When smoothing is on (the image drawn smaller than 1:1), filter well rather than fast.
    _updateImageSmoothingEnabled(context) {
      super._updateImageSmoothingEnabled(context);
      context.imageSmoothingQuality = "high";
    }
  }

  const viewer = OSD({
    element,
    tileSources: { type: "image", url: stage.dataset.imageUrl },
    // Canvas 2D: one image needs no WebGL, and this drawer raises tile-drawn and honours imageSmoothingEnabled.
    drawer: SingleTileCanvasDrawer,
    // Smoothing only while the image is drawn smaller than 1:1 (see updateSmoothing). The plain-image source
    // builds no pyramid here (its useCanvas is unset), so the full-resolution image is drawn at every zoom.
    imageSmoothingEnabled: false,
    immediateRender: true, // draw the needed resolution at once, no coarse-to-fine blend
    showNavigationControl: false, // our toolbar; OpenSeadragon's button images are not vendored
    // OpenSeadragon's keys (r rotates, f flips, w/a/s/d pan, 0 goes home) clash with the answer keys.
    // With keyboardNavEnabled false its canvas-key handler does nothing (preventDefaultAction stays true),
    // so every key reaches the page, where our own handler below does the zooming.
    keyboardNavEnabled: false,
    tabIndex: -1, // #viewer is the tab stop (it carries the label); a click may still focus the canvas
    mouseNavEnabled: false, // until show()
    visibilityRatio: 1,
    constrainDuringPan: true,
    minZoomImageRatio: 1,
    maxZoomPixelRatio: MAX_MAGNIFICATION / window.devicePixelRatio,
    animationTime: 0.4,
    gestureSettingsMouse: { clickToZoom: false }, // a click only focuses; double-click and wheel zoom
  });

  let interactive = false;
  let smoothing = false;
  let atHome = true;
  let recording = false;
  let zoomMax = null;
  let zoomedMs = 0;
  let zoomedSince = null;

  const viewport = () => viewer.viewport;
  const image = () => viewer.world.getItemAt(0);

  function magnification(zoom = viewport().getZoom(true)) {
    return image().viewportToImageZoom(zoom) * window.devicePixelRatio;
  }

  function nativeZoom() {
    return image().imageToViewportZoom(1 / window.devicePixelRatio);
  }

  // 1:1 must stay reachable when the whole image is shown magnified (a small image on a large screen).
  function updateZoomLimits() {
    viewport().minZoomLevel = Math.min(viewport().getHomeZoom(), nativeZoom());
    viewport().maxZoomPixelRatio = MAX_MAGNIFICATION / window.devicePixelRatio;
  }

  function isAtHome() {
    const home = viewport().getHomeBounds();
    const bounds = viewport().getBounds(true);
    const tolerance = 0.01 * home.width;
    return (
      Math.abs(bounds.width - home.width) < tolerance &&
      home.getCenter().distanceTo(bounds.getCenter()) < tolerance
    );
  }

  // Drawn smaller than 1:1 the image needs filtering (else it aliases); from 1:1 up its pixels stay
  // square and sharp: interpolation would invent detail and blur the artefacts raters look for.
  function updateSmoothing() {
    const smooth = magnification() < 1 - 1e-6;
    if (smooth !== smoothing) {
      smoothing = smooth;
      viewer.drawer.setImageSmoothingEnabled(smooth);
    }
  }

  function sample(now = performance.now()) {
    if (!recording) return;
    const zoom = viewport().getZoom(true);
    zoomMax = Math.max(zoomMax ?? 0, magnification(zoom));
    const zoomedIn = zoom > ZOOMED_IN_FACTOR * viewport().getHomeZoom();
    if (zoomedIn && zoomedSince === null) zoomedSince = now;
    if (!zoomedIn && zoomedSince !== null) {
      zoomedMs += now - zoomedSince;
      zoomedSince = null;
    }
  }

  function act(action) {
    const vp = viewport();
    if (action === "home") {
      vp.goHome();
      atHome = true;
      return;
    }
    if (action === "in" || action === "out") {
      vp.zoomBy(action === "in" ? ZOOM_STEP : 1 / ZOOM_STEP);
    } else if (action === "native") {
      vp.zoomTo(nativeZoom());
    } else {
      const size = vp.getContainerSize();
      const dx = { left: -1, right: 1 }[action] ?? 0;
      const dy = { up: -1, down: 1 }[action] ?? 0;
      vp.panBy(vp.deltaPointsFromPixels(new OSD.Point(dx * size.x * PAN_FRACTION, dy * size.y * PAN_FRACTION)));
    }
    vp.applyConstraints();
    atHome = false;
  }

  function setInteractive(on) {
    interactive = on;
    viewer.setMouseNavEnabled(on);
    for (const button of buttons) button.disabled = !on;
  }

  viewer.addHandler("open", () => {
    updateZoomLimits();
    updateSmoothing();
    output.textContent = magnificationLabel(magnification());
  });
  viewer.addOnceHandler("tile-drawn", () => onFirstPaint(performance.now()));
  viewer.addHandler("open-failed", () => onError());
  viewer.addHandler("viewport-change", () => {
    if (!image()) return;
    sample();
    updateSmoothing();
    output.textContent = magnificationLabel(magnification());
  });
  viewer.addHandler("animation-finish", () => {
    if (image()) atHome = isAtHome();
  });
  // OpenSeadragon keeps the zoom roughly in proportion on resize; the whole-image view should stay whole.
  // The event comes before it sets the new zoom, hence the microtask.
  viewer.addHandler("resize", () => {
    if (!image()) return;
    queueMicrotask(() => {
      updateZoomLimits();
      if (atHome) viewport().goHome(true);
    });
  });

  for (const button of buttons) {
    button.disabled = true;
    // A click leaves the focus where it was, so Enter still sends the answer instead of zooming again.
    button.addEventListener("mousedown", (event) => event.preventDefault());
    button.addEventListener("click", () => {
      if (interactive) act(button.dataset.zoom);
    });
  }

  function onKeyDown(event) {
    const action = KEY_ACTIONS[event.key];
    if (!action || !interactive || !image() || event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target;
    if (target.closest("textarea, select, [contenteditable], input:not([type=radio], [type=checkbox])")) return;
    if (event.key.startsWith("Arrow") && target.matches("input")) return; // arrows move between radio answers
    event.preventDefault(); // no page scroll, no browser zoom
    act(action);
  }
  document.addEventListener("keydown", onKeyDown);

  return {
    viewer,
    /** The image is now visible: allow zooming and start the zoom record. */
    show(now = performance.now()) {
      setInteractive(true);
      recording = true;
      sample(now);
    },
    /** End the zoom record (the answer is being sent, or the image is masked). */
    stopRecording(now = performance.now()) {
      sample(now);
      if (zoomedSince !== null) zoomedMs += now - zoomedSince;
      zoomedSince = null;
      recording = false;
    },
    /** The viewing time is over: stop recording, freeze the controls, drop the image. */
    hide(now = performance.now()) {
      this.stopRecording(now);
      setInteractive(false);
      viewer.close();
    },
    /** The trial is over and its stage leaves the page: release the viewer and its key handler. */
    destroy() {
      document.removeEventListener("keydown", onKeyDown);
      viewer.destroy();
    },
    /** Highest magnification reached while shown (null before show). */
    get zoomMax() {
      return zoomMax;
    },
    /** Milliseconds spent zoomed in beyond the whole-image view while shown, up to now. */
    get zoomedMs() {
      return zoomedMs + (zoomedSince === null ? 0 : performance.now() - zoomedSince);
    },
  };
}
