// The marks harness page: open the viewer, show the image once drawn, and mark while "Generated" is chosen.
// window.ratingViewer is the OpenSeadragon viewer, window.marksHarness what the test reads.
import { disableMarking, enableMarking } from "/static/studies/marks.js";
import { openViewer } from "/static/studies/viewer.js";

const form = document.getElementById("answer-form");
const harness = { painted: false, changed: null };
window.marksHarness = harness;

const viewer = openViewer(document.getElementById("stage"), {
  onFirstPaint() {
    viewer.show();
    harness.painted = true;
  },
});
window.ratingViewer = viewer.viewer;

form.addEventListener("change", (event) => {
  if (event.target.name !== "judged_real") return;
  if (event.target.value === "generated") {
    enableMarking(viewer.viewer, {
      container: document.getElementById("mark-container"),
      output: form.elements.namedItem("marks"),
      onChange: (marks) => (harness.changed = marks),
    });
  } else {
    disableMarking();
  }
});
