// Study design form (admin): show only the options of the chosen task. The mapping comes from the
// server (the task registry) on the task field's data attributes.
"use strict";

(function () {
  const task = document.getElementById("id_task");
  if (!task) return;
  const options = JSON.parse(task.dataset.taskOptions || "{}");
  const all = JSON.parse(task.dataset.allOptions || "[]");

  function update() {
    const applies = new Set(options[task.value] || []);
    for (const name of all) {
      const row = document.querySelector(`.form-row.field-${name}, .fieldBox.field-${name}`);
      if (row) row.hidden = !applies.has(name);
    }
  }
  task.addEventListener("change", update);
  update();
})();
