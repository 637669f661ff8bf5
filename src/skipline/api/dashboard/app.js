// skipline dashboard: polls the summary (./stats, ./stats/queues, ./stats/history) and
// redraws; the orders views live in orders.js, the charts in charts.js. No libraries, no
// build step.
"use strict";

import { drawChart, drawLegend } from "./charts.js";
import {
  HttpError, byId, call, cell, element, heldKey, holdKey, rate, reasonOf, say, seconds, when,
} from "./common.js";
import { showOrder, showOrders, wireOrders } from "./orders.js";

const POLL_MS = 2000;
const HOUR = 3600;
const COLUMNS = ["queued", "running", "succeeded", "failed", "cancelled"];
const samples = []; // the last hour of /stats/history, oldest first
let interval = 2;
let workersAbsent = false; // GET /workers answered 404: this server has no registry

function tierClass(names, name) {
  return name === "vip" ? "s-vip" : "s-" + (names.indexOf(name) % 6);
}

function tierRow(name, tier, queue, widest) {
  const row = document.createElement("tr");
  cell(row, name, "tier-" + name);
  for (const column of COLUMNS) {
    cell(row, String(tier[column]), column === "failed" && tier.failed > 0 ? "failed" : "");
  }
  const late = queue && queue.overdue > 0;
  cell(row, seconds(queue ? queue.oldest_queued_age : null), late ? "failed" : "");
  cell(row, queue ? String(queue.overdue) : "–", late ? "failed" : "");
  cell(row, seconds(queue ? queue.wait_p50 : tier.wait_p50));
  cell(row, seconds(queue ? queue.wait_p99 : tier.wait_p99));
  const bar = element("div", null, "bar");
  bar.style.width = (widest > 0 ? (100 * tier.queued) / widest : 0) + "%";
  cell(row, "", "queue").appendChild(bar);
  return row;
}

function renderTiers(stats, queues) {
  const tiers = Object.entries(stats.tiers);
  const widest = Math.max(0, ...tiers.map(([, tier]) => tier.queued));
  const queueOf = (name) => (queues ? queues.tiers[name] : null);
  byId("tiers").replaceChildren(
    ...tiers.map(([name, tier]) => tierRow(name, tier, queueOf(name), widest)));
  const total = (column) => tiers.reduce((sum, [, tier]) => sum + tier[column], 0);
  byId("throughput").textContent = stats.throughput_per_second.toFixed(2);
  byId("queued").textContent = String(total("queued"));
  byId("running").textContent = String(total("running"));
  const ages = queues ? Object.values(queues.tiers).map((t) => t.oldest_queued_age) : [];
  const oldest = ages.filter((age) => age !== null);
  byId("oldest").textContent = oldest.length ? seconds(Math.max(...oldest)) : "–";
  byId("failing").textContent = queues ? rate(queues.failed_per_second) : "–";
}

function renderKinds(stats, queues) {
  const kinds = stats.kinds ? Object.entries(stats.kinds) : [];
  byId("kinds-box").hidden = kinds.length === 0;
  byId("kinds").replaceChildren(...kinds.map(([name, kind]) => {
    const row = document.createElement("tr");
    const queue = queues && queues.kinds ? queues.kinds[name] : null;
    cell(row, name);
    for (const column of COLUMNS) {
      cell(row, String(kind[column] ?? "–"), column === "failed" && kind.failed > 0 ? "failed" : "");
    }
    const late = queue && queue.overdue > 0;
    cell(row, seconds(queue ? queue.oldest_queued_age : null), late ? "failed" : "");
    cell(row, queue ? String(queue.overdue) : "–", late ? "failed" : "");
    cell(row, seconds(queue ? queue.wait_p50 : kind.wait_p50));
    cell(row, seconds(queue ? queue.wait_p99 : kind.wait_p99));
    return row;
  }));
  const select = document.querySelector("#order-filters select[name=kind]");
  byId("kind-filter").hidden = kinds.length === 0;
  fillOptions(select, kinds.map(([name]) => name));
}

function fillOptions(select, names) {
  const have = [...select.options].map((option) => option.value);
  for (const name of names) {
    if (!have.includes(name)) select.appendChild(new Option(name, name));
  }
}

function renderCustomers(queues) {
  const customers = queues && queues.customers ? queues.customers : [];
  byId("customers-box").hidden = !(queues && queues.customers);
  if (customers.length === 0) {
    const row = document.createElement("tr");
    cell(row, "nothing queued or running", "text").colSpan = 6;
    byId("customers").replaceChildren(row);
    return;
  }
  byId("customers").replaceChildren(...customers.map((group) => {
    const row = document.createElement("tr");
    cell(row, group.tier, "tier-" + group.tier);
    cell(row, group.key || "(anonymous)", "text");
    cell(row, group.customer || "–", "text");
    cell(row, String(group.ready));
    cell(row, String(group.running));
    cell(row, seconds(group.oldest_queued_age));
    return row;
  }));
}

function renderWorkers(found) {
  const workers = found ? found.workers : [];
  byId("workers-box").hidden = !found;
  byId("workers").replaceChildren(...workers.map((worker) => {
    const row = document.createElement("tr");
    cell(row, worker.host);
    cell(row, String(worker.pid));
    cell(row, (worker.kinds || []).join(", ") || "all", "text");
    cell(row, worker.slots_busy + " / " + worker.slots_total);
    cell(row, when(worker.started_at));
    cell(row, when(worker.last_heartbeat));
    return row;
  }));
}

function series(names, pick, dashed, suffix) {
  return names.map((name) => ({
    name: name + (suffix || ""), className: tierClass(names, name), dashed,
    points: samples.map((sample) => [sample.at, sample.tiers[name] ? pick(sample.tiers[name])
      : (dashed === undefined ? 0 : null)]),
  }));
}

function renderCharts(tierNames) {
  if (samples.length === 0) return;
  const span = { from: samples[0].at, to: samples[samples.length - 1].at,
    maxGap: interval * 3 };
  const depth = series(tierNames, (tier) => tier.queued);
  const count = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1));
  drawChart(byId("chart-depth"), depth, { ...span, format: count });
  drawLegend(byId("legend-depth"), depth);
  const rates = [
    { name: "finished/s", className: "s-ok",
      points: samples.map((s) => [s.at, s.succeeded_per_second + s.failed_per_second]) },
    { name: "failed/s", className: "s-bad",
      points: samples.map((s) => [s.at, s.failed_per_second]) },
  ];
  drawChart(byId("chart-rates"), rates, { ...span, format: (v) => v.toFixed(1) });
  drawLegend(byId("legend-rates"), rates);
  const waits = [...series(tierNames, (tier) => tier.wait_p99, false, " p99"),
    ...series(tierNames, (tier) => tier.wait_p50, true, " p50")];
  drawChart(byId("chart-waits"), waits, { ...span, format: seconds });
  drawLegend(byId("legend-waits"), waits);
}

async function readHistory() {
  const last = samples.length ? samples[samples.length - 1].at : null;
  const history = await call("stats/history" + (last === null ? "" : "?after=" + last));
  interval = history.interval;
  samples.push(...history.samples);
  const since = samples.length ? samples[samples.length - 1].at - HOUR : 0;
  while (samples.length && samples[0].at < since) samples.shift();
}

async function readWorkers() {
  if (workersAbsent || !heldKey()) return null;
  try {
    return await call("workers");
  } catch (error) {
    if (error instanceof HttpError && error.status === 404) workersAbsent = true;
    if (error instanceof HttpError) return null;
    throw error;
  }
}

function showState(text, ok) {
  const state = byId("state");
  state.textContent = text;
  state.className = "state " + (ok ? "ok" : "down");
}

async function refresh() {
  // /stats first: while the server is away only that request fails.
  const stats = await call("stats");
  const queues = await call("stats/queues");
  await readHistory();
  renderTiers(stats, queues);
  renderKinds(stats, queues);
  renderCustomers(queues);
  renderWorkers(await readWorkers());
  renderCharts(Object.keys(stats.tiers));
  fillOptions(document.querySelector("#order-filters select[name=tier]"),
    Object.keys(stats.tiers));
  showState(stats.accepting ? "accepting orders" : "draining: not accepting", stats.accepting);
  byId("main").classList.remove("stale");
  byId("updated").textContent = new Date().toLocaleTimeString();
  byId("key-who").textContent = heldKey() ? (queues.admin ? "admin key held for this tab"
    : "key held (not an admin key)") : "";
}

async function poll() {
  try {
    await refresh();
  } catch (error) {
    if (error instanceof HttpError && (error.status === 401 || error.status === 403)) {
      showState("the summary needs an admin key: " + error.message, false);
    } else {
      showState("unreachable (" + reasonOf(error) + "): figures below are from the last answer",
        false);
      byId("main").classList.add("stale");
    }
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

function route() {
  const hash = location.hash || "#/";
  const view = hash.startsWith("#/orders") ? "orders" : hash.startsWith("#/order/") ? "order"
    : "overview";
  for (const name of ["overview", "orders", "order"]) byId(name).hidden = name !== view;
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("current", link.getAttribute("href") === hash
      || (view === "overview" && link.id === "nav-overview"));
  }
  say("");
  if (view === "orders") showOrders(hash);
  if (view === "order") showOrder(decodeURIComponent(hash.slice("#/order/".length)));
}

function showKey() {
  const held = Boolean(heldKey());
  byId("key-form").hidden = held;
  byId("key-held").hidden = !held;
}

function wireKey() {
  byId("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = byId("key-input");
    holdKey(input.value.trim());
    input.value = "";
    workersAbsent = false;
    showKey();
    route();
  });
  byId("key-forget").addEventListener("click", () => {
    holdKey(null);
    showKey();
    route();
  });
}

wireKey();
wireOrders(route);
showKey();
window.addEventListener("hashchange", route);
route();
poll();
