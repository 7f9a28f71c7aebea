// Trial page behaviour: response time, exposure limit, keyboard shortcuts, no double submit.
// Knows nothing about the image but its opaque URL.
"use strict";

(function () {
  // A page brought back by the back button shows a trial that may be answered already: ask the server.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) window.location.reload();
  });

  var next = document.getElementById("continue");
  if (next) next.focus();

  var form = document.getElementById("answer-form");
  var image = document.getElementById("trial-image");
  if (!form || !image) return;

  var stage = image.closest(".stage");
  var submit = form.querySelector("button[type=submit]");
  var exposureMs = parseInt(stage.dataset.exposureMs, 10);
  var shownAt = null;
  submit.disabled = true; // no answer before the image is on screen

  function onShown() {
    if (shownAt !== null) return;
    shownAt = performance.now();
    submit.disabled = false;
    if (exposureMs > 0) {
      window.setTimeout(function () {
        image.hidden = true;
        stage.querySelector(".hidden-note").hidden = false;
      }, exposureMs);
    }
  }
  if (image.complete && image.naturalWidth > 0) onShown();
  else image.addEventListener("load", onShown);
  image.addEventListener("error", function () {
    stage.querySelector(".load-error").hidden = false;
  });

  var sent = false;
  form.addEventListener("submit", function (event) {
    if (sent || shownAt === null) {
      event.preventDefault();
      return;
    }
    sent = true;
    form.elements.client_ms.value = String(Math.round(performance.now() - shownAt));
    submit.disabled = true;
  });

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || event.repeat) return;
    if (event.key === "Enter") {
      if (event.target.closest("button, a")) return; // their own activation submits or follows
      event.preventDefault();
      form.requestSubmit();
      return;
    }
    if (!/^[a-z0-9]$/i.test(event.key)) return;
    var radio = form.querySelector('input[data-key="' + event.key.toLowerCase() + '"]');
    if (radio) {
      event.preventDefault();
      radio.checked = true;
    }
  });
})();
