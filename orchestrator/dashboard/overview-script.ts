/**
 * The overview's refresher, served from the dashboard itself (`script-src 'self'`): every 5 s it
 * reads `overview.json` and rewrites the table's rows (models found since are added) with `textContent` (never HTML).
 */
export const overviewScript = `"use strict";
(() => {
  const cells = (line) => [line.model, line.stateText ?? line.state, line.workers, line.waiting, line.active,
    line.completed, line.failed, line.cancelled, line.tokensPerSecond.toFixed(1)];
  async function refresh() {
    try {
      const response = await fetch("overview.json", { credentials: "same-origin" });
      if (!response.ok) return;
      const lines = await response.json();
      const body = document.querySelector("#llmpool-overview tbody");
      // No model yet: the page's own row says so.
      if (body === null || lines.length === 0) return;
      const rows = lines.map((line) => {
        const row = document.createElement("tr");
        row.dataset.model = line.model;
        cells(line).forEach((value, index) => {
          const cell = document.createElement("td");
          cell.textContent = String(value);
          if (index === 1) cell.className = "state-" + line.state;
          row.append(cell);
        });
        return row;
      });
      body.replaceChildren(...rows);
    } catch {
      // The next round tries again.
    }
  }
  setInterval(refresh, 5000);
})();
`;
