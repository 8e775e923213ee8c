// flow's visualiser: the run list, a run's graph (laid out by dagre), and a task panel.
// Task data is only ever put on the page with textContent and setAttribute, never innerHTML.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var COLORS = {
    pending: "#d0d0d0", running: "#ffd54f", ran: "#66bb6a", "up-to-date": "#a7c7e7",
    restored: "#b39ddb", failed: "#ef5350", skipped: "#ffb74d"
  };
  var ORDER = ["failed", "running", "skipped", "pending", "ran", "restored", "up-to-date"];
  var GROUP_AT = 1500; // above this many tasks, draw one node per task family
  var embedded = document.getElementById("flow-data");
  var state = { runs: [], runId: null, run: null, byId: {}, shape: "", nodes: {},
                selected: null, view: { x: 0, y: 0, k: 1 }, grouped: false };
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, attrs, text, ns) {
    var e = ns ? document.createElementNS(SVG, tag) : document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
  function fmtTime(t) { return t ? new Date(t * 1000).toLocaleString() : ""; }
  function fmtDur(s) {
    if (s === null || s === undefined) return "";
    if (s < 10) return s.toFixed(2) + "s";
    if (s < 120) return s.toFixed(1) + "s";
    return Math.floor(s / 60) + "m" + String(Math.floor(s % 60)).padStart(2, "0") + "s";
  }
  function getJSON(url, done) {
    var x = new XMLHttpRequest();
    x.open("GET", url);
    x.onload = function () { if (x.status === 200) done(JSON.parse(x.responseText)); };
    x.send();
  }

  // -- the run list -------------------------------------------------------------------------
  function loadRuns() {
    getJSON("/api/runs", function (runs) {
      state.runs = runs;
      drawRuns();
      $("empty").style.display = runs.length ? "none" : "block";
      if (!runs.length) return;
      var newest = runs[0].id;
      if (state.runId === null || (state.follow && state.runId !== newest)) selectRun(newest, true);
    });
  }
  function drawRuns() {
    var list = $("run-list");
    clear(list);
    state.runs.forEach(function (r) {
      var li = el("li", { "data-run": r.id, "data-status": r.status });
      li.style.borderLeftColor = r.status === "failed" ? COLORS.failed :
        r.status === "running" ? COLORS.running : r.status === "succeeded" ? COLORS.ran : "#999";
      if (r.id === state.runId) li.className = "selected";
      li.appendChild(el("b", {}, "#" + r.id + " " + r.status));
      li.appendChild(el("small", {}, fmtTime(r.started)));
      var c = Object.keys(r.counts || {}).map(function (k) { return r.counts[k] + " " + k; });
      li.appendChild(el("small", {}, c.join(", ")));
      li.addEventListener("click", function () { selectRun(r.id, r.id === state.runs[0].id); });
      list.appendChild(li);
    });
  }
  function selectRun(id, follow) {
    state.follow = follow;
    if (state.runId !== id) { state.runId = id; state.selected = null; }
    drawRuns();
    getJSON("/api/runs/" + id, showRun);
  }

  // -- a run ----------------------------------------------------------------------------------
  function showRun(run) {
    if (run.id !== state.runId) return;
    state.run = run;
    state.byId = Object.create(null);
    run.tasks.forEach(function (t) { state.byId[t.task] = t; });
    var shape = run.id + ":" + run.tasks.length;
    if (shape !== state.shape) { state.shape = shape; layout(run); fit(); }
    paint();
    drawCounts(run);
    $("run-title").textContent = "run #" + run.id + " " + run.status +
      (run.finished ? " in " + fmtDur(run.finished - run.started) : "");
    if (run.dashboard && /^https?:\/\//.test(run.dashboard)) { // never a javascript: link
      $("run-title").appendChild(el("a", { href: run.dashboard, target: "_blank", rel: "noopener noreferrer" }, " Dask dashboard"));
    }
    if (state.selected) showPanel(state.selected);
  }
  function drawCounts(run) {
    var counts = Object.create(null);
    run.tasks.forEach(function (t) { counts[t.status] = (counts[t.status] || 0) + 1; });
    var box = $("counts");
    clear(box);
    ORDER.forEach(function (s) {
      if (!counts[s]) return;
      var b = el("span", { "data-status": s }, counts[s] + " " + s);
      b.style.background = COLORS[s];
      box.appendChild(b);
    });
  }
  function families(run) {
    var fam = Object.create(null), of = Object.create(null);
    run.tasks.forEach(function (t) {
      (fam[t.family] = fam[t.family] || []).push(t);
      of[t.task] = t.family;
    });
    return { fam: fam, of: of };
  }
  function layout(run) {
    var g = new dagre.graphlib.Graph();
    g.setGraph({ rankdir: "LR", nodesep: 6, ranksep: 40, marginx: 10, marginy: 10 });
    g.setDefaultEdgeLabel(function () { return {}; });
    state.grouped = run.tasks.length > GROUP_AT;
    var label = function (s) { return Math.min(300, 14 + 6.5 * s.length); };
    if (state.grouped) {
      var f = families(run);
      state.families = f.fam;
      Object.keys(f.fam).forEach(function (name) {
        var text = name + " ×" + f.fam[name].length;
        g.setNode("f:" + name, { width: label(text), height: 34, text: text, family: name });
      });
      run.tasks.forEach(function (t) {
        t.deps.forEach(function (d) {
          if (f.of[d] !== undefined && f.of[d] !== t.family) g.setEdge("f:" + f.of[d], "f:" + t.family);
        });
      });
    } else {
      run.tasks.forEach(function (t) {
        g.setNode(t.task, { width: label(t.task), height: 24, text: t.task, task: t.task });
      });
      run.tasks.forEach(function (t) {
        t.deps.forEach(function (d) { if (state.byId[d]) g.setEdge(d, t.task); });
      });
    }
    dagre.layout(g);
    draw(g);
  }
  function draw(g) {
    var vp = $("viewport");
    clear(vp);
    state.nodes = Object.create(null);
    var crit = critical();
    var frag = document.createDocumentFragment();
    g.edges().forEach(function (e) {
      var pts = g.edge(e).points;
      var d = "M" + pts.map(function (p) { return p.x + "," + p.y; }).join("L");
      var cls = "edge" + (crit.edges[e.v + ">" + e.w] ? " critical" : "");
      frag.appendChild(el("path", { d: d, "class": cls }, null, true));
    });
    g.nodes().forEach(function (id) {
      var n = g.node(id);
      var grp = el("g", { "class": "node", transform: "translate(" + (n.x - n.width / 2) + "," + (n.y - n.height / 2) + ")" }, null, true);
      grp.setAttribute("data-id", n.task || ("family:" + n.family));
      if (n.task && crit.nodes[n.task]) grp.classList.add("critical");
      var rect = el("rect", { width: n.width, height: n.height }, null, true);
      grp.appendChild(rect);
      grp.appendChild(el("text", { x: 7, y: n.height / 2 + 4 }, n.text, true));
      if (n.family) grp.appendChild(el("g", { "class": "bars" }, null, true));
      grp.addEventListener("click", function (ev) {
        ev.stopPropagation();
        if (n.task) select(n.task); else showFamily(n.family);
      });
      state.nodes[id] = { g: grp, rect: rect, n: n };
      frag.appendChild(grp);
    });
    vp.appendChild(frag);
    state.bounds = { w: g.graph().width || 1, h: g.graph().height || 1 };
  }
  function worst(tasks) {
    var seen = Object.create(null);
    tasks.forEach(function (t) { seen[t.status] = 1; });
    for (var i = 0; i < ORDER.length; i++) if (seen[ORDER[i]]) return ORDER[i];
    return "pending";
  }
  function paint() {
    Object.keys(state.nodes).forEach(function (id) {
      var node = state.nodes[id];
      if (node.n.task) {
        var t = state.byId[node.n.task];
        node.rect.setAttribute("fill", COLORS[t.status] || "#eee");
        node.g.setAttribute("data-status", t.status);
        return;
      }
      var tasks = state.families[node.n.family];
      node.rect.setAttribute("fill", COLORS[worst(tasks)]);
      var bars = node.g.querySelector(".bars");
      clear(bars);
      var counts = Object.create(null);
      tasks.forEach(function (t) { counts[t.status] = (counts[t.status] || 0) + 1; });
      var x = 0, w = node.n.width;
      ORDER.forEach(function (s) {
        if (!counts[s]) return;
        var bw = w * counts[s] / tasks.length;
        bars.appendChild(el("rect", { x: x, y: node.n.height - 6, width: bw, height: 6, fill: COLORS[s], stroke: "none" }, null, true));
        x += bw;
      });
    });
  }
  function critical() {
    var out = { nodes: {}, edges: {} };
    var c = (embedded && state.data && state.data.critical) || null;
    if (!c) return out;
    $("critical").textContent = "critical path: " + c.path.length + " tasks, " + fmtDur(c.seconds);
    c.path.forEach(function (t, i) {
      out.nodes[t] = 1;
      if (i) out.edges[c.path[i - 1] + ">" + t] = 1;
    });
    return out;
  }

  // -- the task panel -------------------------------------------------------------------------
  function select(tid) {
    if (state.selected && state.nodes[state.selected]) state.nodes[state.selected].g.classList.remove("selected");
    state.selected = tid;
    if (state.nodes[tid]) state.nodes[tid].g.classList.add("selected");
    showPanel(tid);
  }
  function row(dl, name, value) {
    if (value === null || value === undefined || value === "") return;
    dl.appendChild(el("dt", {}, name));
    var dd = el("dd", {}, typeof value === "object" ? null : value);
    if (typeof value === "object") dd.appendChild(value);
    dl.appendChild(dd);
  }
  function showPanel(tid) {
    var t = state.byId[tid], p = $("panel");
    clear(p);
    if (!t) return;
    p.appendChild(el("h2", { id: "task-id" }, t.task));
    var dl = el("dl");
    row(dl, "Status", t.status);
    row(dl, "Reason", t.reason ? t.reason + (t.detail ? ": " + t.detail : "") : "");
    row(dl, "Duration", fmtDur(t.duration));
    row(dl, "Message", t.message);
    if (t.progress !== null && t.progress !== undefined) {
      var bar = el("div", { "class": "bar", title: t.progress + "%" });
      var fill = el("div");
      fill.style.width = Math.max(0, Math.min(100, t.progress)) + "%";
      bar.appendChild(fill);
      row(dl, "Progress " + Math.round(t.progress) + "%", bar);
    }
    var keys = Object.keys(t.params || {});
    if (keys.length) {
      var tbl = el("table", { "class": "params" });
      keys.forEach(function (k) {
        var tr = el("tr");
        tr.appendChild(el("th", {}, k));
        tr.appendChild(el("td", { "class": "param-value" }, t.params[k]));
        tbl.appendChild(tr);
      });
      row(dl, "Parameters", tbl);
    }
    row(dl, "Family", t.family);
    row(dl, "Upstream", t.deps.length ? t.deps.length + " task" + (t.deps.length > 1 ? "s" : "") : "");
    p.appendChild(dl);
    if (t.output) {
      p.appendChild(el("h3", {}, "Output"));
      p.appendChild(el("pre", { id: "task-output" }, t.output));
    }
  }
  function showFamily(name) {
    var p = $("panel"), tasks = state.families[name];
    clear(p);
    p.appendChild(el("h2", {}, name + " (" + tasks.length + " tasks)"));
    var ol = el("ol");
    tasks.slice(0, 300).forEach(function (t) {
      var li = el("li", {}, t.task + " — " + t.status);
      li.addEventListener("click", function () { select(t.task); });
      ol.appendChild(li);
    });
    p.appendChild(ol);
    if (tasks.length > 300) p.appendChild(el("p", { "class": "hint" }, "search to find the others"));
  }

  // -- search, pan and zoom -------------------------------------------------------------------
  function search() {
    var q = $("search").value.trim().toLowerCase(), box = $("matches");
    clear(box);
    Object.keys(state.nodes).forEach(function (id) { state.nodes[id].g.classList.remove("match"); });
    if (!q || !state.run) return;
    var hits = state.run.tasks.filter(function (t) { return t.task.toLowerCase().indexOf(q) >= 0; });
    hits.slice(0, 50).forEach(function (t) {
      var li = el("li", {}, t.task);
      li.addEventListener("click", function () { select(t.task); centre(t.task); });
      box.appendChild(li);
      if (state.nodes[t.task]) state.nodes[t.task].g.classList.add("match");
    });
    if (hits.length > 50) box.appendChild(el("li", {}, "… " + (hits.length - 50) + " more"));
  }
  function apply() {
    var v = state.view;
    $("viewport").setAttribute("transform", "translate(" + v.x + "," + v.y + ") scale(" + v.k + ")");
  }
  function fit() {
    var box = $("canvas").getBoundingClientRect(), b = state.bounds || { w: 1, h: 1 };
    var k = Math.min(box.width / b.w, box.height / b.h, 1.5) * 0.95;
    state.view = { k: k, x: (box.width - b.w * k) / 2, y: (box.height - b.h * k) / 2 };
    apply();
  }
  function centre(tid) {
    var node = state.nodes[tid];
    if (!node) return;
    var box = $("canvas").getBoundingClientRect(), v = state.view;
    v.k = Math.max(v.k, 1);
    v.x = box.width / 2 - node.n.x * v.k;
    v.y = box.height / 2 - node.n.y * v.k;
    apply();
  }
  function panZoom() {
    var svg = $("canvas"), drag = null;
    svg.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var r = svg.getBoundingClientRect(), v = state.view;
      var f = Math.exp(-ev.deltaY * 0.0015), mx = ev.clientX - r.left, my = ev.clientY - r.top;
      v.x = mx - (mx - v.x) * f; v.y = my - (my - v.y) * f; v.k *= f;
      apply();
    }, { passive: false });
    svg.addEventListener("mousedown", function (ev) { drag = { x: ev.clientX, y: ev.clientY }; });
    window.addEventListener("mousemove", function (ev) {
      if (!drag) return;
      state.view.x += ev.clientX - drag.x; state.view.y += ev.clientY - drag.y;
      drag = { x: ev.clientX, y: ev.clientY };
      apply();
    });
    window.addEventListener("mouseup", function () { drag = null; });
  }

  // -- start ----------------------------------------------------------------------------------
  $("search").addEventListener("input", search);
  $("fit").addEventListener("click", fit);
  panZoom();
  if (embedded) {
    state.data = JSON.parse(embedded.textContent);
    $("runs").style.display = "none";
    state.runId = state.data.run.id;
    showRun(state.data.run);
    $("empty").style.display = "none";
  } else {
    loadRuns();
    setInterval(function () {
      loadRuns();
      if (state.run && state.run.status === "running") getJSON("/api/runs/" + state.runId, showRun);
    }, 1000);
  }
  window.flowReady = true;
})();
