// The page of `hieroaction serve`: upload (or pick an example) as a job (POST /api/jobs), follow
// the job's URL (its place in line, then its progress), show the result.
// Everything the model wrote is put in the page as text (textContent), never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const POLL_MS = 400;
let info = null;
let chosenExample = null;

function fmt(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "\u2014";
  if (typeof value === "number") return Math.abs(value) >= 1000 ? value.toFixed(1) : String(Number(value.toPrecision(4)));
  return String(value);
}

function mib(bytes) { return (bytes / (1024 * 1024)).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0) + " MiB"; }

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function setStatus(text, percent) {
  $("progress-card").hidden = false;
  $("status").textContent = text;
  if (percent === null) $("progress").removeAttribute("value");
  else $("progress").value = percent;
}

function showError(message) {
  $("progress-card").hidden = false;
  $("error").hidden = false;
  $("error").textContent = message;
  $("progress").value = 0;
  $("status").textContent = "Not assessed.";
  $("assess").disabled = false;
}

async function loadInfo() {
  try {
    const response = await fetch("/api/info");
    info = await response.json();
  } catch (e) {
    $("server").textContent = "The server cannot be reached.";
    return;
  }
  $("server").textContent = "Model: " + info.model;
  const select = $("domain");
  for (const name of info.domains) {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = name;
    select.appendChild(option);
  }
  select.value = info.default_domain;
  // GIF is an image type and browsers do not all know .ts: offer what the server accepts.
  $("file").accept = info.file_accept;
  $("limits").textContent = "Up to " + mib(info.max_upload_bytes) + "; " + info.accepted_formats.join(", ") +
    " (recognised by content); an assessment may take up to " + info.timeout_s + " s.";
  if (info.examples.length) {
    $("examples-box").hidden = false;
    for (const ex of info.examples) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "example";
      button.dataset.id = ex.id;
      const img = document.createElement("img");
      img.src = ex.thumbnail;
      img.alt = "a frame of " + ex.name;
      button.appendChild(img);
      const name = document.createElement("div");
      name.textContent = ex.name;
      const truth = document.createElement("div");
      truth.className = "muted";
      truth.textContent = ex.action + ", score " + fmt(ex.score);
      button.append(name, truth);
      button.addEventListener("click", () => chooseExample(ex, button));
      $("examples").appendChild(button);
    }
  }
  $("assess").disabled = false;
}

function chooseExample(ex, button) {
  chosenExample = ex;
  $("file").value = "";
  $("file-label").textContent = "Example " + ex.name + " chosen (or drop a video instead)";
  for (const b of document.querySelectorAll(".example")) b.classList.toggle("selected", b === button);
  $("domain").value = ex.domain;
}

function fileChosen() {
  const file = $("file").files[0];
  if (!file) return;
  chosenExample = null;
  for (const b of document.querySelectorAll(".example")) b.classList.remove("selected");
  $("file-label").textContent = file.name + " (" + mib(file.size) + ")";
}

function submit(event) {
  event.preventDefault();
  $("error").hidden = true;
  $("result").hidden = true;
  const file = $("file").files[0];
  const form = new FormData();
  if (file) {
    if (info && file.size > info.max_upload_bytes) {
      showError(file.name + " is " + mib(file.size) + "; the server accepts up to " + mib(info.max_upload_bytes) + ".");
      return;
    }
    form.append("video", file, file.name);
  } else if (chosenExample) {
    form.append("example", chosenExample.id);
  } else {
    showError("Choose a video or an example first.");
    return;
  }
  form.append("domain", $("domain").value);
  $("assess").disabled = true;
  setStatus(file ? "Uploading " + file.name + "\u2026" : "Sending the example\u2026", 0);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/api/jobs");
  xhr.responseType = "json";
  xhr.upload.addEventListener("progress", (e) => {
    if (e.lengthComputable) setStatus("Uploading: " + Math.round((100 * e.loaded) / e.total) + " %", (30 * e.loaded) / e.total);
  });
  xhr.addEventListener("load", () => {
    const body = xhr.response || {};
    if (xhr.status === 202) {
      // the job's own URL (Location), polled until it is done
      follow(body, xhr.getResponseHeader("Location") || body.url);
      return;
    }
    let message = body.detail || ("the server answered " + xhr.status);
    const retry = xhr.getResponseHeader("Retry-After");
    if (xhr.status === 429 && retry) message += " (retry in about " + retry + " s)";
    showError(message);
  });
  xhr.addEventListener("error", () => showError("The upload failed (the connection was closed; the file may be over the size limit)."));
  xhr.send(form);
}

function waitingText(job) {
  if (job.position <= 0) return "Waiting to start";
  const ahead = job.position === 1 ? "1 video ahead" : job.position + " videos ahead";
  const wait = job.wait_s === null || job.wait_s === undefined ? "" : ", about " + Math.max(1, Math.round(job.wait_s)) + " s";
  return "Place " + (job.position + 1) + " in line: " + ahead + wait + " (first come, first served)";
}

function follow(job, url) {
  if (job.state === "queued") {
    setStatus(waitingText(job), 30);
  } else if (job.state === "running") {
    const expected = job.expected_s;
    const share = expected ? Math.min(0.95, job.elapsed_s / expected) : null;
    const text = "Assessing " + job.name + ": " + job.elapsed_s.toFixed(1) + " s" +
      (expected ? " of about " + expected.toFixed(1) + " s (estimated from recent videos)" : "");
    setStatus(text, share === null ? null : 30 + 70 * share);
  } else if (job.state === "done") {
    setStatus("Done in " + job.elapsed_s.toFixed(1) + " s.", 100);
    render(job);
    $("assess").disabled = false;
    return;
  } else {
    showError(job.error ? job.error.message : "The assessment failed.");
    return;
  }
  setTimeout(async () => {
    try {
      const response = await fetch(url);
      const body = await response.json();
      if (!response.ok) { showError(body.detail || "the job was lost"); return; }
      follow(body, url);
    } catch (e) {
      showError("The server stopped answering.");
    }
  }, POLL_MS);
}

function render(job) {
  const r = job.result;
  const a = r.assessment || {};
  const truth = job.truth;
  $("result").hidden = false;
  $("result").classList.toggle("hide-truth", !truth);
  $("result-name").textContent = job.name;
  const parts = [];
  if (r.window) parts.push("window " + r.window[0].toFixed(2) + "\u2013" + r.window[1].toFixed(2) + " s");
  parts.push(r.frame_times.length + " frames", "domain " + r.domain);
  $("result-window").textContent = parts.join(", ");
  $("action").textContent = a.action || "(not read)";
  $("score").textContent = a.score === null || a.score === undefined ? "(not read)" : fmt(a.score);
  // only a calibrated model gives an interval (and, with samples, their agreement)
  $("interval-row").hidden = !r.interval;
  $("interval").textContent = r.interval ? r.interval.text : "";
  $("samples-row").hidden = !r.samples;
  $("samples").textContent = r.samples ? r.samples.text : "";
  const components = Object.entries(a.components || {}).map(([k, v]) => k + " " + fmt(v));
  $("components").textContent = components.length ? components.join(", ") : "\u2014";
  $("true-action").textContent = truth ? truth.action || "\u2014" : "";
  $("true-score").textContent = truth ? fmt(truth.score) : "";
  $("timeline").src = job.links.timeline;
  const body = $("steps");
  body.replaceChildren();
  (a.steps || []).forEach((s, i) => {
    const row = document.createElement("tr");
    cell(row, String(i + 1), "num");
    cell(row, s.label);
    cell(row, s.start.toFixed(2), "num");
    cell(row, s.end.toFixed(2), "num");
    cell(row, s.quality === null || s.quality === undefined ? "" : fmt(s.quality), "num");
    cell(row, s.analysis || "");
    body.appendChild(row);
  });
  $("no-steps").hidden = (a.steps || []).length > 0;
  $("recognition").textContent = a.recognition_reasoning || "(none)";
  $("scoring").textContent = a.scoring_reasoning || "(none)";
  const problems = r.problems || [];
  $("problems-summary").textContent = problems.length
    ? "The answer does not fully follow the stepwise format; what could be read is shown above:"
    : "The answer follows the stepwise format.";
  $("problems-summary").className = problems.length ? "error" : "ok";
  const list = $("problems");
  list.replaceChildren();
  for (const p of problems) {
    const li = document.createElement("li");
    li.textContent = p.code + ": " + p.message;
    list.appendChild(li);
  }
  $("raw").textContent = r.completion || "";
  $("download-json").href = job.links.json;
  $("download-report").href = job.links.report;
  const t = r.timings;
  $("timings").textContent = "decode " + t.decode_s.toFixed(2) + " s, preprocess " + t.preprocess_s.toFixed(2) +
    " s, generate " + t.generate_s.toFixed(2) + " s";
}

document.addEventListener("DOMContentLoaded", () => {
  $("form").addEventListener("submit", submit);
  $("file").addEventListener("change", fileChosen);
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) { $("file").files = e.dataTransfer.files; fileChosen(); }
  });
  loadInfo();
});
