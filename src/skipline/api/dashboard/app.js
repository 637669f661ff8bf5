// skipline dashboard: polls ./stats and redraws. No libraries, no build step.
"use strict";

const POLL_MS = 2000;
const ANSWER_MS = 5000; // a server that does not answer by then is shown as unreachable
const COLUMNS = ["queued", "running", "succeeded", "failed", "cancelled"];

function byId(id) {
  return document.getElementById(id);
}

function seconds(value) {
  if (value === null || value === undefined) return "–";
  return value < 1 ? (value * 1000).toFixed(0) + " ms" : value.toFixed(2) + " s";
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function tierRow(name, tier, widest) {
  const row = document.createElement("tr");
  cell(row, name, "tier-" + name);
  for (const column of COLUMNS) {
    cell(row, String(tier[column]), column === "failed" && tier.failed > 0 ? "failed" : "");
  }
  cell(row, seconds(tier.wait_p50));
  cell(row, seconds(tier.wait_p99));
  const bar = document.createElement("div");
  bar.className = "bar";
  bar.style.width = (widest > 0 ? (100 * tier.queued) / widest : 0) + "%";
  cell(row, "", "queue").appendChild(bar);
  return row;
}

function render(stats) {
  const tiers = Object.entries(stats.tiers);
  const widest = Math.max(0, ...tiers.map(([, tier]) => tier.queued));
  const body = byId("tiers");
  body.replaceChildren(...tiers.map(([name, tier]) => tierRow(name, tier, widest)));
  const total = (column) => tiers.reduce((sum, [, tier]) => sum + tier[column], 0);
  byId("throughput").textContent = stats.throughput_per_second.toFixed(2);
  byId("queued").textContent = String(total("queued"));
  byId("running").textContent = String(total("running"));
  showState(stats.accepting ? "accepting orders" : "draining: not accepting", stats.accepting);
  byId("main").classList.remove("stale");
  byId("updated").textContent = new Date().toLocaleTimeString();
}

function showState(text, ok) {
  const state = byId("state");
  state.textContent = text;
  state.className = "state " + (ok ? "ok" : "down");
}

async function poll() {
  try {
    const response = await fetch("stats", {
      headers: { Accept: "application/json" }, signal: AbortSignal.timeout(ANSWER_MS),
    });
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
  } catch (error) {
    const reason = error.name === "TimeoutError" ? "no answer in " + ANSWER_MS / 1000 + " s"
      : error.message;
    showState("unreachable (" + reason + "): figures below are from the last answer", false);
    byId("main").classList.add("stale");
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
