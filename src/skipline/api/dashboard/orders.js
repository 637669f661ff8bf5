// The orders views, for a key holder: a filtered, paginated list (GET /orders), one order's
// page (GET /orders/{id}) and its actions (DELETE /orders/{id}, POST /orders/{id}/retry).
"use strict";

import { HttpError, byId, call, cell, element, heldKey, reasonOf, say, when } from "./common.js";

const FILTERS = ["status", "tier", "kind", "customer"];
const PAGE_SIZE = 25;
const pages = { filters: "", cursors: [null] }; // cursors[i]: the cursor of page i

function needKey(what) {
  if (heldKey()) return false;
  say(what + " need an API key (an admin key sees every order): enter one above.", true);
  byId("key-input").focus();
  return true;
}

function explain(error) {
  if (error instanceof HttpError && error.status === 401) {
    say("the key was refused: " + error.message, true);
  } else {
    say(reasonOf(error), true);
  }
}

export function filtersOf(hash) {
  const query = new URLSearchParams(hash.split("?")[1] || "");
  const chosen = new URLSearchParams();
  for (const name of FILTERS) {
    if (query.get(name)) chosen.set(name, query.get(name));
  }
  return chosen;
}

function fillForm(chosen) {
  const form = byId("order-filters");
  for (const name of FILTERS) form.elements[name].value = chosen.get(name) || "";
}

function orderRow(order) {
  const row = document.createElement("tr");
  const link = element("a", order.id.slice(-12), "mono");
  link.href = "#/order/" + order.id;
  link.title = order.id;
  cell(row, "").appendChild(link);
  cell(row, order.status, "text status-" + order.status);
  cell(row, order.tier, "text tier-" + order.tier);
  cell(row, order.kind, "text");
  cell(row, order.customer || "–", "text");
  cell(row, String(order.attempts));
  cell(row, when(order.created_at));
  cell(row, order.error || "", "error");
  return row;
}

export async function showOrders(hash) {
  const chosen = filtersOf(hash);
  fillForm(chosen);
  if (pages.filters !== chosen.toString()) {
    pages.filters = chosen.toString();
    pages.cursors = [null];
  }
  if (needKey("Orders")) {
    byId("order-rows").replaceChildren();
    return;
  }
  const query = new URLSearchParams(chosen);
  query.set("limit", String(PAGE_SIZE));
  const cursor = pages.cursors[pages.cursors.length - 1];
  if (cursor) query.set("cursor", cursor);
  try {
    const page = await call("orders?" + query);
    say("");
    byId("order-rows").replaceChildren(...page.orders.map(orderRow));
    byId("orders-caption").textContent = (chosen.get("status") === "failed"
      ? "Failed orders and their errors" : "Orders") + ", newest first · page "
      + pages.cursors.length;
    byId("older").disabled = !page.next_cursor;
    byId("older").dataset.cursor = page.next_cursor || "";
    byId("newer").disabled = pages.cursors.length <= 1;
  } catch (error) {
    explain(error);
  }
}

export function wireOrders(redraw) {
  const form = byId("order-filters");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    for (const name of FILTERS) {
      const value = form.elements[name].value.trim();
      if (value) chosen.set(name, value);
    }
    const hash = "#/orders" + (chosen.toString() ? "?" + chosen : "");
    if (location.hash === hash) redraw();
    else location.hash = hash;
  });
  byId("open-order").addEventListener("click", () => {
    const id = form.elements.id.value.trim();
    if (id) location.hash = "#/order/" + encodeURIComponent(id);
  });
  byId("older").addEventListener("click", (event) => {
    pages.cursors.push(event.target.dataset.cursor);
    redraw();
  });
  byId("newer").addEventListener("click", () => {
    if (pages.cursors.length > 1) pages.cursors.pop();
    redraw();
  });
  byId("cancel-order").addEventListener("click", () => act("DELETE", "", "cancelled"));
  byId("retry-order").addEventListener("click", () => act("POST", "/retry", "queued again"));
}

function fact(list, name, value) {
  list.appendChild(element("dt", name));
  list.appendChild(element("dd", value === null || value === undefined ? "–" : String(value)));
}

function timeline(order) {
  const events = [["accepted", order.created_at], ["not before", order.not_before],
    ["next attempt", order.next_attempt_at], ["started", order.started_at],
    ["finished (" + order.status + ")", order.finished_at]];
  for (const run of order.history) {
    events.push([run.status + " after " + run.attempts + " attempt(s), then queued again",
      run.finished_at]);
  }
  const shown = events.filter(([, at]) => at).sort((a, b) => new Date(a[1]) - new Date(b[1]));
  return shown.map(([what, at]) => element("li", when(at) + " — " + what));
}

function json(value) {
  return value === null || value === undefined ? "–" : JSON.stringify(value, null, 2);
}

function renderOrder(order) {
  byId("order-id").textContent = order.id;
  const badge = byId("order-status");
  badge.textContent = order.status;
  badge.className = "badge status-" + order.status;
  byId("cancel-order").hidden = order.status !== "queued";
  byId("retry-order").hidden = !["failed", "cancelled"].includes(order.status);
  const facts = byId("order-facts");
  facts.replaceChildren();
  for (const name of ["tier", "kind", "priority", "customer", "attempts"]) {
    if (name in order) fact(facts, name, order[name]);
  }
  byId("order-timeline").replaceChildren(...timeline(order));
  byId("order-error-box").hidden = !order.error;
  byId("order-error").textContent = order.error || "";
  byId("order-payload").textContent = json(order.payload);
  byId("order-result").textContent = json(order.result);
  const callback = byId("order-callback");
  callback.replaceChildren();
  byId("order-callback-box").hidden = !order.callback;
  if (order.callback) {
    for (const name of ["url", "status", "attempts", "last_error"]) {
      fact(callback, name.replace("_", " "), order.callback[name]);
    }
  }
  byId("order-history-box").hidden = order.history.length === 0;
  byId("order-history").replaceChildren(...order.history.map((run) => {
    const row = document.createElement("tr");
    cell(row, when(run.finished_at));
    cell(row, run.status, "text status-" + run.status);
    cell(row, String(run.attempts));
    cell(row, run.error || "", "error");
    return row;
  }));
}

let shownId = null;

export async function showOrder(id) {
  shownId = id;
  if (needKey("Orders")) return;
  try {
    renderOrder(await call("orders/" + encodeURIComponent(id)));
    say("");
  } catch (error) {
    explain(error);
  }
}

async function act(method, suffix, done) {
  try {
    const order = await call("orders/" + encodeURIComponent(shownId) + suffix, method);
    renderOrder(order);
    say("order " + done);
  } catch (error) {
    explain(error);
  }
}
