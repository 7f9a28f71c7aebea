// Job page: polls the job's progress and draws its loss curves (a file, not an inline script: CSP).
"use strict";

(function () {
  const status = document.getElementById("job-status");
  async function refresh() {
    const r = await fetch(status.dataset.url, {credentials: "same-origin"});
    if (!r.ok) return;
    const job = await r.json();
    const p = job.progress || {};
    status.textContent = job.status + (p.epoch ? ` — epoch ${p.epoch}/${p.total_epochs}, iteration ${p.iteration}/${p.iterations_per_epoch}, ${(p.images_per_s||0).toFixed(1)} img/s, ETA ${Math.round((p.eta_s||0)/60)} min` : "") + (job.error ? " — " + job.error : "");
    document.getElementById("job-log").textContent = job.log_tail;
    const names = new Set();
    job.history.forEach(h => Object.keys(h.losses || {}).forEach(k => names.add(k)));
    const traces = [...names].map(n => ({name: n, mode: "lines", x: job.history.map(h => h.step), y: job.history.map(h => (h.losses || {})[n])}));
    if (window.Plotly && traces.length) Plotly.react("job-losses", traces, {margin: {t: 10}, xaxis: {title: "iteration"}, yaxis: {title: "loss"}});
    if (["queued", "running"].includes(job.status)) setTimeout(refresh, 2000);
  }
  refresh();
})();
