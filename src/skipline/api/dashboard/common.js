// Shared by the dashboard's modules: DOM helpers, number formats, and the one way the page
// talks to the server (with the admin key, if one is held, as a bearer token).
"use strict";

export const ANSWER_MS = 5000; // a server that does not answer by then is shown as unreachable
const KEY_ITEM = "skipline.key";

export function byId(id) {
  return document.getElementById(id);
}

export function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

export function cell(row, text, className) {
  const td = element("td", text, className);
  row.appendChild(td);
  return td;
}

export function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 1) return (value * 1000).toFixed(0) + " ms";
  if (value < 120) return value.toFixed(2) + " s";
  if (value < 7200) return (value / 60).toFixed(1) + " min";
  return (value / 3600).toFixed(1) + " h";
}

export function rate(value) {
  return value === null || value === undefined ? "–" : value.toFixed(2);
}

export function when(value) {
  if (!value) return "–";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return date.toLocaleString();
}

// The key lives in this tab's session storage only: never in a URL, never in a cookie.
export function heldKey() {
  return sessionStorage.getItem(KEY_ITEM);
}

export function holdKey(key) {
  if (key) sessionStorage.setItem(KEY_ITEM, key);
  else sessionStorage.removeItem(KEY_ITEM);
}

export class HttpError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// `path` relative to the page; JSON in and out; a problem+json answer becomes an HttpError
// carrying its detail.
export async function call(path, method = "GET") {
  const headers = { Accept: "application/json" };
  const key = heldKey();
  if (key) headers.Authorization = "Bearer " + key;
  const response = await fetch(path, {
    method, headers, signal: AbortSignal.timeout(ANSWER_MS),
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && body.detail ? body.detail : "HTTP " + response.status;
    throw new HttpError(response.status, detail);
  }
  return body;
}

export function reasonOf(error) {
  return error.name === "TimeoutError" ? "no answer in " + ANSWER_MS / 1000 + " s"
    : error.message;
}

export function say(text, bad) {
  const message = byId("message");
  message.textContent = text || "";
  message.hidden = !text;
  message.className = "message" + (bad ? " bad" : "");
}
