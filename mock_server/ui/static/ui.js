// The dashboard's one shared script: forms that change the emulator through the control API, and copy buttons.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

function fieldValue(input) {
  const kind = input.dataset.type || "text";
  if (kind === "bool") return input.type === "checkbox" ? input.checked : input.value === "true";
  const text = input.value.trim();
  if (text === "" && !("keepEmpty" in input.dataset)) return undefined;
  if (kind === "int") return Number.parseInt(text, 10);
  if (kind === "float") return Number.parseFloat(text);
  if (kind === "list") return text.split(",").map((s) => s.trim()).filter(Boolean);
  if (kind === "json") return JSON.parse(text);
  return input.value;
}

// {"a.b": 1} -> {"a": {"b": 1}}
function put(target, name, value) {
  const path = name.split(".");
  let node = target;
  for (const key of path.slice(0, -1)) node = node[key] ??= {};
  node[path[path.length - 1]] = value;
}

function formBody(form) {
  const body = {};
  for (const input of form.querySelectorAll("[name]")) {
    if (input.type === "radio" && !input.checked) continue;
    const value = fieldValue(input);
    if (value !== undefined) put(body, input.name, value);
  }
  return body;
}

function say(form, text, ok) {
  let out = form.querySelector(".form-result");
  if (!out) {
    out = document.createElement("p");
    out.className = "form-result";
    out.setAttribute("role", "status");
    form.append(out);
  }
  out.textContent = text;
  out.classList.toggle("error", !ok);
}

async function submitControl(event) {
  const form = event.target.closest("form[data-control]");
  if (!form) return;
  event.preventDefault();
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
  const [method, url] = form.dataset.control.split(" ", 2);
  let body;
  try {
    body = method === "DELETE" ? undefined : JSON.stringify(formBody(form));
  } catch (error) {
    say(form, `Not valid JSON: ${error.message}`, false);
    return;
  }
  const headers = { "X-M365-CSRF": csrf() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, body, credentials: "same-origin" });
  if (response.ok) {
    if (form.dataset.then === "stay") say(form, "Done.", true);
    else window.location.reload();
    return;
  }
  let text = `${response.status} ${response.statusText}`;
  try {
    const answer = await response.json();
    if (answer.error) text = `${answer.error.code}: ${answer.error.message}`;
  } catch (_) { /* not JSON: the status says it */ }
  say(form, text, false);
}

async function copy(event) {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const text = button.dataset.copy;
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    const area = document.createElement("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  button.classList.add("copied");
  setTimeout(() => button.classList.remove("copied"), 1200);
}

document.addEventListener("submit", submitControl);
document.addEventListener("click", copy);
