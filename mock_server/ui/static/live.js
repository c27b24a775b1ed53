// The live log: records arrive as server-sent events and are shown newest first; a click shows one whole.
"use strict";

const MAX_ROWS = 500;
const rows = document.getElementById("log-rows");
const state = document.getElementById("log-state");
const records = new Map();

const REQUEST_FIELDS = [
  ["time", "Time"], ["method", "Method"], ["path", "Path"], ["kind", "Kind"], ["app_name", "App"],
  ["app_id", "App id"], ["tenant_id", "Tenant"], ["roles", "Token roles"], ["request_id", "request-id"],
  ["client_request_id", "client-request-id sent"], ["user_agent", "User-Agent"],
  ["batch_request_id", "In $batch"],
];
const ANSWER_FIELDS = [
  ["status", "Status"], ["outcome", "Outcome"], ["operation", "Operation"], ["mailbox", "Mailbox"],
  ["decision", "Decision"], ["error_code", "Error code"], ["retry_after", "Retry-After (s)"],
  ["fault", "Fault rule"], ["fault_action", "Fault action"],
];

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  if (className) td.className = className;
  return td;
}

function shown(value) {
  if (value === null || value === undefined || value === "") return "none";
  return Array.isArray(value) ? value.join(", ") || "none" : String(value);
}

function fill(list, record, fields) {
  list.replaceChildren();
  for (const [key, label] of fields) {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = shown(record[key]);
    dd.dataset.field = key;
    list.append(dt, dd);
  }
}

function select(row) {
  for (const other of rows.querySelectorAll("tr.selected")) other.classList.remove("selected");
  row.classList.add("selected");
  const record = records.get(row.dataset.seq);
  fill(document.getElementById("log-request"), record, REQUEST_FIELDS);
  fill(document.getElementById("log-answer"), record, ANSWER_FIELDS);
  document.getElementById("log-detail").hidden = false;
}

function add(record) {
  const row = document.createElement("tr");
  row.dataset.seq = String(record.seq);
  row.dataset.status = String(record.status);
  row.dataset.outcome = record.outcome;
  row.className = "new";
  const status = record.status === 0 ? "dropped" : String(record.status);
  row.append(
    cell(record.time.slice(11, 23)),
    cell(status, `status-${String(record.status)[0]}`),
    cell(record.app_name || record.app_id || "-"),
    cell(record.mailbox || "-"),
    cell(record.kind === "token" ? "token" : record.operation || "-"),
    cell(record.reason ? `${record.outcome}: ${record.reason}` : record.outcome, record.outcome),
    cell(`${record.method} ${record.path}`, "mono"),
  );
  row.title = record.decision || record.error_code || "";
  records.set(row.dataset.seq, record);
  rows.prepend(row);
  while (rows.rows.length > MAX_ROWS) {
    records.delete(rows.lastElementChild.dataset.seq);
    rows.lastElementChild.remove();
  }
  document.getElementById("log-empty").hidden = true;
}

rows.addEventListener("click", (event) => {
  const row = event.target.closest("tr");
  if (row) select(row);
});

const source = new EventSource(rows.dataset.events);
source.addEventListener("record", (event) => add(JSON.parse(event.data)));
source.addEventListener("open", () => { state.textContent = "live"; });
source.addEventListener("error", () => { state.textContent = "reconnecting"; });
