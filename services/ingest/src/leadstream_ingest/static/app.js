// The pipeline status page: polls GET /v1/status and renders it. No framework, no inline
// code (the page's CSP allows scripts and styles from this origin only); every value is
// put in the DOM as text, never as HTML.
"use strict";

(() => {
  const KEY = "leadstream.statusKey";
  const RETRY_MS = 5000;
  const HIDDEN_MS = 10000;
  const $ = (id) => document.getElementById(id);
  const number = new Intl.NumberFormat("en-US");
  let timer = null;
  let refreshMs = 1500;

  // ------------------------------------------------------------------ formatting

  function count(n) {
    return n === null || n === undefined ? "–" : number.format(n);
  }

  function rate(r) {
    if (r === null || r === undefined) return "–";
    return r < 10 ? r.toFixed(1) : number.format(Math.round(r));
  }

  function duration(s) {
    if (s === null || s === undefined) return "–";
    const t = Math.max(0, Math.round(s));
    const pad = (x) => String(x).padStart(2, "0");
    if (t < 60) return `${t}s`;
    if (t < 3600) return `${Math.floor(t / 60)}m ${pad(t % 60)}s`;
    if (t < 86400) return `${Math.floor(t / 3600)}h ${pad(Math.floor((t % 3600) / 60))}m`;
    return `${Math.floor(t / 86400)}d ${Math.floor((t % 86400) / 3600)}h`;
  }

  function percent(p) {
    return p === null || p === undefined ? "" : `${Math.floor(p * 100)}%`;
  }

  function clock(iso) {
    return iso ? new Date(iso).toLocaleTimeString("en-GB") : "–";
  }

  function label(job) {
    return job.name ? `${job.name} (${job.kind})` : `${job.kind} ${job.job_id.slice(0, 8)}`;
  }

  function eta(job) {
    if (!job.active) return "–";
    return job.eta_s === null ? "unknown" : duration(job.eta_s);
  }

  function progressText(job) {
    if (job.expected_total === null) return `${count(job.received)} received`;
    return `${count(job.processed)} / ${count(job.expected_total)} (${percent(job.progress)})`;
  }

  // ------------------------------------------------------------------ DOM helpers

  function el(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }

  function cell(field, text, value, cls) {
    const td = el("td", text, { "data-field": field });
    if (value !== undefined && value !== null) td.dataset.value = String(value);
    if (cls) td.className = cls;
    return td;
  }

  function bar(job) {
    const p = el("progress", null, { max: "1" });
    if (job.progress !== null) p.value = job.progress; // no value: indeterminate
    p.setAttribute("aria-label", `progress of ${label(job)}`);
    return p;
  }

  // ------------------------------------------------------------------ rendering

  function renderBanner(data) {
    const running = data.jobs.filter((j) => j.active && !j.stalled);
    const stalled = data.jobs.filter((j) => j.active && j.stalled);
    const list = $("banner-jobs");
    list.replaceChildren(
      ...running.map((job) => {
        const li = el("li", null, { "data-job-id": job.job_id });
        li.append(
          el("strong", label(job)),
          el("span", ` — ${job.phase}`, { "data-field": "phase" }),
          el("span", ` · ${progressText(job)}`, { "data-field": "progress" }),
          el("span", ` · elapsed ${duration(job.elapsed_s)}`, { "data-field": "elapsed" }),
          el("span", ` · ETA ${eta(job)}`, { "data-field": "eta" }),
          bar(job),
        );
        return li;
      }),
    );
    const note = $("banner-stalled");
    note.hidden = stalled.length === 0;
    note.textContent = stalled.length
      ? `${stalled.length} running job(s) without progress for over 10 minutes.`
      : "";
    $("banner").hidden = running.length === 0 && stalled.length === 0;
    $("idle").hidden = running.length > 0 || stalled.length > 0;
    document.title = running.length
      ? `(${running.length} running) LeadStream — pipeline status`
      : "LeadStream — pipeline status";
  }

  function renderStages(data) {
    const k = data.kafka;
    const note = $("kafka-note");
    if (k.ok) {
      note.textContent = `From Kafka at ${clock(k.as_of)}.`;
      note.className = "note";
    } else {
      const last = k.as_of ? ` — showing the sample of ${clock(k.as_of)}` : "";
      note.textContent = `${k.error || "Kafka has not answered yet"}${last}.`;
      note.className = "note error";
    }
    $("stage-rows").replaceChildren(
      ...data.stages.map((s) => {
        const tr = el("tr", null, { "data-stage": s.stage });
        tr.append(
          cell("stage", s.stage),
          cell("state", s.state, s.state, `state-${s.state}`),
          cell("instances", count(s.instances), s.instances, "num"),
          cell("lag", count(s.lag), s.lag, s.lag > 0 ? "num busy" : "num"),
          cell("rate_in", rate(s.rate_in), s.rate_in, "num"),
          cell("rate_out", rate(s.rate_out), s.rate_out, "num"),
          cell(
            "dead_letters",
            count(s.dead_letters),
            s.dead_letters,
            s.dead_letter_rate ? "num alarm" : "num",
          ),
        );
        return tr;
      }),
    );
    $("stages").hidden = false;
  }

  function renderJobs(data) {
    $("job-rows").replaceChildren(
      ...data.jobs.map((job) => {
        const tr = el("tr", null, { "data-job-id": job.job_id, "data-status": job.status });
        const name = cell("job", null);
        name.append(el("span", label(job), { class: "job-name" }));
        name.append(el("span", job.job_id, { class: "job-id" }));
        const status = cell("status", null, job.status, `status-${job.status}`);
        status.append(el("span", job.active ? job.phase : job.status, { "data-field": "phase" }));
        if (job.stalled) status.append(el("span", "no progress", { class: "stalled-tag" }));
        if (job.error) status.append(el("span", job.error, { class: "job-error" }));
        const progress = cell("progress", null, job.progress, "progress-col");
        progress.append(bar(job));
        progress.append(
          el("span", progressText(job), {
            class: "progress-text",
            "data-processed": String(job.processed),
            "data-total": String(job.expected_total),
          }),
        );
        tr.append(
          name,
          status,
          progress,
          cell("rate", job.rate_per_s ? `${rate(job.rate_per_s)}/s` : "–", job.rate_per_s, "num"),
          cell("elapsed", duration(job.elapsed_s), job.elapsed_s, "num"),
          cell("eta", eta(job), job.eta_s, "num"),
        );
        return tr;
      }),
    );
    $("no-jobs").hidden = data.jobs.length > 0;
    $("jobs").hidden = false;
  }

  function render(data) {
    renderBanner(data);
    renderStages(data);
    renderJobs(data);
    $("scope").textContent = data.anonymous
      ? "Public view: counts only."
      : "Jobs shown: those of your key (an admin key: every job).";
  }

  function connection(state, text) {
    const c = $("connection");
    c.dataset.state = state;
    c.textContent = text;
  }

  // ------------------------------------------------------------------ key and polling

  function storedKey() {
    try {
      return sessionStorage.getItem(KEY);
    } catch {
      return null;
    }
  }

  function askForKey(reason) {
    for (const id of ["banner", "idle", "stages", "jobs"]) $(id).hidden = true;
    $("key-form").hidden = false;
    const err = $("key-error");
    err.hidden = !reason;
    err.textContent = reason || "";
    $("forget-key").hidden = true;
    connection("locked", "an API key is needed");
    $("key-input").focus();
  }

  async function reasonOf(response) {
    try {
      return (await response.json()).reason || `HTTP ${response.status}`;
    } catch {
      return `HTTP ${response.status}`;
    }
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(poll, document.hidden ? Math.max(ms, HIDDEN_MS) : ms);
  }

  async function poll() {
    const key = storedKey();
    const headers = { Accept: "application/json" };
    if (key) headers.Authorization = `Bearer ${key}`;
    let response;
    try {
      response = await fetch("/v1/status", { headers, cache: "no-store" });
    } catch {
      connection("offline", "connection lost — retrying");
      schedule(RETRY_MS);
      return;
    }
    if (response.status === 401 || response.status === 403) {
      const reason = await reasonOf(response);
      if (key) sessionStorage.removeItem(KEY);
      askForKey(key ? reason : null);
      return; // polling resumes when a key is entered
    }
    if (!response.ok) {
      connection("offline", `${await reasonOf(response)} — retrying`);
      schedule(RETRY_MS);
      return;
    }
    const data = await response.json();
    render(data);
    $("key-form").hidden = true;
    $("forget-key").hidden = !key;
    connection("live", `live · updated ${clock(data.generated_at)}`);
    refreshMs = Math.max(500, data.refresh_s * 1000);
    schedule(refreshMs);
  }

  function start() {
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("key-input").value.trim();
      if (!value) return;
      sessionStorage.setItem(KEY, value);
      $("key-input").value = "";
      $("key-error").hidden = true;
      connection("connecting", "connecting…");
      poll();
    });
    $("forget-key").addEventListener("click", () => {
      sessionStorage.removeItem(KEY);
      clearTimeout(timer);
      askForKey(null);
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && $("key-form").hidden) schedule(0);
    });
    poll();
  }

  start();
})();
