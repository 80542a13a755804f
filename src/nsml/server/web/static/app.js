// OpenNSML web UI: small helpers over the JSON API shared by every page's script.
"use strict";

const api = async (path, options = {}) => {
  const init = { ...options, headers: { "X-NSML-Web": "1", ...(options.headers || {}) } };
  if (init.body && typeof init.body !== "string") {
    init.body = JSON.stringify(init.body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch("/api/v1" + path, init);
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail; } catch (_) { /* not JSON */ }
    const error = new Error(detail);
    error.status = response.status;
    throw error;
  }
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
};

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (key === "class") node.className = value; else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
};

// numbers as the server's pages and `nsml board` write them: 6815, 0.123457
const fmt = (value) => {
  if (typeof value !== "number") return String(value ?? "");
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));
};
const when = (iso) => iso ? new Date(iso).toLocaleString() : "";

// one colour per session, the same on every chart and in the legend
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939"];

// ---- sortable tables: click a heading; numbers sort as numbers, blanks last ---------
function cellValue(row, index) {
  const cell = row.cells[index];
  return cell ? (cell.dataset.value ?? cell.textContent.trim()) : "";
}

function sortBy(table, th) {
  const index = th.cellIndex;
  const ascending = th.dataset.order !== "asc";
  table.querySelectorAll("th").forEach((other) => delete other.dataset.order);
  th.dataset.order = ascending ? "asc" : "desc";
  const body = table.tBodies[0];
  const rows = [...body.rows].filter((row) => !row.classList.contains("empty"));
  rows.sort((a, b) => {
    const x = cellValue(a, index), y = cellValue(b, index);
    if (x === "" || y === "") return (x === "") - (y === "");  // blanks last either way
    const nx = Number(x), ny = Number(y);
    const order = !Number.isNaN(nx) && !Number.isNaN(ny) ? nx - ny : x.localeCompare(y, undefined, { numeric: true });
    return ascending ? order : -order;
  });
  rows.forEach((row) => body.append(row));
}

function sortable(table) {
  table.querySelectorAll("th[data-sort]").forEach((th) => th.addEventListener("click", () => sortBy(table, th)));
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table.sortable").forEach(sortable);
});
