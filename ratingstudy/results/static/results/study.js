// Results page: draws the charts from the embedded results and keeps them (and the
// tables) current by polling the JSON endpoint. plotly.js is served by this site.
(function () {
  "use strict";
  const root = document.getElementById("results");
  if (!root || typeof Plotly === "undefined") return;
  const url = root.dataset.url;
  const pollMs = Number(root.dataset.pollSeconds || 10) * 1000;
  let results = JSON.parse(document.getElementById("results-data").textContent);
  let version = root.dataset.version;
  const config = { displaylogo: false, responsive: true };
  const label = (row) => (row.is_real ? "Real images" : row.name);

  function intervalBars(rows, key, scale) {
    const ok = rows.filter((r) => r[key].value !== null);
    return {
      x: ok.map(label),
      y: ok.map((r) => r[key].value * scale),
      error_y: {
        type: "data", symmetric: false,
        array: ok.map((r) => (r[key].high === null ? 0 : (r[key].high - r[key].value) * scale)),
        arrayminus: ok.map((r) => (r[key].low === null ? 0 : (r[key].value - r[key].low) * scale)),
      },
    };
  }

  function drawScores() {
    const mos = Object.assign(intervalBars(results.models, "mos_bootstrap", 1), { type: "bar", name: "MOS (1-5)" });
    const real = Object.assign(intervalBars(results.models, "judged_real", 100), {
      type: "bar", name: "% judged real", xaxis: "x2", yaxis: "y2",
    });
    Plotly.react("chart-scores", [mos, real], {
      title: { text: "Scores with 95% intervals" },
      grid: { rows: 1, columns: 2, pattern: "independent" },
      yaxis: { title: { text: "MOS (bootstrap CI)" }, range: [1, 5] },
      yaxis2: { title: { text: "% judged real (Wilson)" }, range: [0, 100] },
      showlegend: false, margin: { t: 40 },
    }, config);
  }

  function drawDistribution() {
    const traces = [1, 2, 3, 4, 5].map((level) => ({
      type: "bar", name: String(level),
      x: results.models.map(label),
      y: results.models.map((r) => {
        const total = r.quality_distribution.reduce((a, b) => a + b, 0);
        return total ? (100 * r.quality_distribution[level - 1]) / total : 0;
      }),
    }));
    Plotly.react("chart-distribution", traces, {
      title: { text: "Distribution of quality ratings (%)" }, barmode: "stack",
      yaxis: { range: [0, 100] }, legend: { title: { text: "Quality" } }, margin: { t: 40 },
    }, config);
  }

  function drawAgreement() {
    const p = results.pairwise;
    Plotly.react("chart-agreement", [{
      type: "heatmap", x: p.raters, y: p.raters, z: p.matrix, zmin: 0, zmax: 1,
      customdata: p.shared, hovertemplate: "%{y} vs %{x}: %{z:.2f} on %{customdata} shared images<extra></extra>",
      colorscale: "Viridis",
    }], { title: { text: "Agreement between raters (" + p.measure + ")" }, margin: { t: 40 } }, config);
  }

  const metricSelect = document.getElementById("scatter-metric");
  const humanSelect = document.getElementById("scatter-human");

  function drawScatter() {
    const names = Object.keys(results.scatter);
    const chosen = metricSelect.value;
    metricSelect.replaceChildren(...names.map((n) => new Option(n, n, false, n === chosen)));
    const metric = metricSelect.value;
    const human = humanSelect.value;
    const data = results.scatter[metric];
    const traces = [];
    if (data) {
      const groups = [...new Set(data.group)];
      for (const g of groups) {
        const idx = data.group.map((v, i) => (v === g ? i : -1)).filter((i) => i >= 0 && data[human][i] !== null);
        traces.push({
          type: "scatter", mode: "markers", name: g,
          x: idx.map((i) => data.x[i]), y: idx.map((i) => data[human][i]),
          text: idx.map((i) => "image " + data.image[i]),
        });
      }
    }
    const rho = results.spearman.find((r) => r.metric === metric && r.human === human);
    Plotly.react("chart-scatter", traces, {
      title: { text: data ? metric + " vs human score" + (rho && rho.rho !== null ? " (Spearman ρ = " + rho.rho.toFixed(2) + ")" : "") : "No per-image metrics yet" },
      xaxis: { title: { text: metric || "" } },
      yaxis: { title: { text: human === "quality" ? "mean quality" : "share judged real" } },
      margin: { t: 40 },
    }, config);
  }

  // Each protocol's own charts (2AFC, diagnosis, staircase, ROC...), as the server describes them.
  function drawProtocol() {
    for (const section of results.protocol || []) {
      if (section.chart && document.getElementById(section.chart.id)) {
        Plotly.react(section.chart.id, section.chart.traces, section.chart.layout, config);
      }
    }
  }

  function drawAll() {
    drawProtocol();
    drawScores();
    drawDistribution();
    drawAgreement();
    drawScatter();
  }

  metricSelect.addEventListener("change", drawScatter);
  humanSelect.addEventListener("change", drawScatter);
  drawAll();

  const status = document.getElementById("live-status");
  const freshness = document.getElementById("freshness");
  async function poll() {
    if (document.hidden) return;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const payload = await response.json();
      status.textContent = "Updated " + new Date().toLocaleTimeString();
      if (payload.freshness) {
        freshness.textContent = "Statistics " + payload.freshness.text;
        freshness.classList.toggle("stale", payload.freshness.stale);
      }
      if (payload.version === version) return;
      results = payload.results;
      version = payload.version;
      document.getElementById("tables").innerHTML = payload.tables_html;
      drawAll();
    } catch (error) {
      status.textContent = "Could not refresh (" + error.message + "); retrying";
    }
  }
  setInterval(poll, pollMs);
})();
