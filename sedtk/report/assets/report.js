// sedtk report: draws the utterance cards (one page at a time) and the timeline from the inline JSON.
// Data is only ever put into the page with textContent / attributes set through the DOM: never innerHTML.
(function () {
  "use strict";
  var root = document.documentElement;
  var errors = [];
  window.addEventListener("error", function (e) {
    errors.push(String(e.message || e));
    root.dataset.errors = String(errors.length);
  });
  window.addEventListener("unhandledrejection", function (e) {
    errors.push("unhandled rejection: " + String(e.reason));
    root.dataset.errors = String(errors.length);
  });

  var DATA = JSON.parse(document.getElementById("sedtk-data").textContent);
  var INV = DATA.inventory || [];
  var PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777",
                 "#65a30d", "#475569", "#ea580c", "#0d9488", "#9333ea"];
  var VERDICT = { s: "supported", c: "contradicted", q: "uncertain", u: "not checkable" };

  var COLOURS = DATA.colours || {};
  function color(label) {
    if (COLOURS[label]) return COLOURS[label];
    var i = INV.indexOf(label);
    if (i < 0) { INV.push(label); i = INV.length - 1; }
    return PALETTE[i % PALETTE.length];
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function add(parent) {
    for (var i = 1; i < arguments.length; i++) if (arguments[i]) parent.appendChild(arguments[i]);
    return parent;
  }
  function fmtTime(s) {
    var m = Math.floor(s / 60), r = s - 60 * m;
    return m + ":" + (r < 10 ? "0" : "") + r.toFixed(1);
  }
  function audioEl(src) {
    var a = el("audio");
    a.controls = true;
    a.preload = "none";
    // Sources are written by sedtk: a data:audio URI or a percent-encoded relative path.
    if (/^data:audio\//.test(src) || /^\.{0,2}\//.test(src)) a.src = src;
    return a;
  }

  // -- one description with its claims marked -------------------------------------------------------
  function claimTitle(c) {
    var t = (c.a ? c.a + ": " : "") + c.x + " \u2014 " + VERDICT[c.v];
    if (c.m) t += "; measured " + c.m;
    if (c.b) t += " (" + c.b + ")";
    if (c.n) t += "; " + c.n;
    return t;
  }
  function description(pieces, claims) {
    var p = el("p", "desc");
    (pieces || []).forEach(function (pc) {
      if (pc[1] >= 0 && claims && claims[pc[1]]) {
        var c = claims[pc[1]];
        var m = el("mark", "ev ev-" + c.v, pc[0]);
        m.title = claimTitle(c);
        p.appendChild(m);
      } else {
        p.appendChild(document.createTextNode(pc[0]));
      }
    });
    return p;
  }
  function claimList(claims, note) {
    if ((!claims || !claims.length) && !note) return null;
    var ul = el("ul", "claims");
    (claims || []).forEach(function (c) {
      var li = el("li", "claim ev-" + c.v);
      add(li, el("span", "verdict", VERDICT[c.v]), el("b", null, (c.a ? c.a + " " : "") + c.x));
      if (c.m) add(li, el("span", "meas", "measured " + c.m + (c.b ? " (" + c.b + ")" : "")));
      if (c.n) add(li, el("span", "cnote", c.n));
      ul.appendChild(li);
    });
    if (note) ul.appendChild(el("li", "claim ev-u", note));
    return ul;
  }
  function bars(pairs, hyp, ref) {
    var box = el("div", "post");
    pairs.forEach(function (lp) {
      var row = el("div", "prow" + (lp[0] === hyp ? " is-hyp" : "") + (lp[0] === ref ? " is-ref" : ""));
      var bar = el("span", "pbar");
      var fill = el("span", "pfill");
      fill.style.width = (100 * lp[1]).toFixed(1) + "%";
      fill.style.background = color(lp[0]);
      add(bar, fill);
      add(row, el("span", "plab", lp[0]), bar, el("span", "pval", (100 * lp[1]).toFixed(1) + "%"));
      box.appendChild(row);
    });
    return box;
  }
  function field(name, value, cls) {
    if (value === undefined || value === null) return null;
    var d = el("div", "field" + (cls ? " " + cls : ""));
    add(d, el("span", "fname", name), el("span", "fval", value));
    return d;
  }
  function emoChip(label, cls) {
    var s = el("span", "emo" + (cls ? " " + cls : ""), label);
    s.style.borderColor = color(label);
    return s;
  }

  // -- utterance cards -------------------------------------------------------------------------------
  function card(u) {
    var art = el("article", "utt");
    art.id = "u-" + u.k;
    var head = el("div", "uh");
    add(head, el("span", "key", u.k));
    if (u.d !== undefined) add(head, el("span", "dur", u.d.toFixed(2) + " s"));
    if (u.spk) add(head, el("span", "spk", "speaker " + u.spk));
    if (u.ok !== undefined) add(head, el("span", "ok " + (u.ok ? "yes" : "no"), u.ok ? "\u2713 emotion right" : "\u2717 emotion wrong"));
    art.appendChild(head);
    if (u.au) art.appendChild(audioEl(u.au));
    else if (u.an) art.appendChild(el("p", "note", u.an));
    if (u.err) { art.appendChild(el("p", "error", "decode failed: " + u.err)); return art; }
    var cols = el("div", "cols");
    var hyp = el("div", "hyp");
    add(hyp, el("h5", null, "Generated"));
    add(hyp, field("transcript", u.t));
    if (u.ds) { var f = field("description", ""); f.lastChild.appendChild(description(u.ds, u.c)); hyp.appendChild(f); }
    add(hyp, claimList(u.c, u.en));
    if (u.e) { var fe = field("emotion", ""); fe.lastChild.appendChild(emoChip(u.e, "hyp")); hyp.appendChild(fe); }
    if (u.p) hyp.appendChild(bars(INV.slice(0, u.p.length).map(function (l, i) { return [l, u.p[i]]; }), u.e, u.re));
    var ref = el("div", "ref");
    add(ref, el("h5", null, "Reference"));
    if (u.rt === undefined && u.rd === undefined && u.re === undefined && !u.ra) ref.appendChild(el("p", "note", "no reference (give --data)"));
    add(ref, field("transcript", u.rt), field("description", u.rd));
    if (u.re) { var fr = field("emotion", ""); fr.lastChild.appendChild(emoChip(u.re, "ref")); ref.appendChild(fr); }
    if (u.ra) {
      var dl = el("div", "attrs");
      Object.keys(u.ra).forEach(function (a) { add(dl, el("span", "attr", a + "=" + u.ra[a])); });
      add(ref, field("attributes", ""));
      ref.lastChild.lastChild.appendChild(dl);
    }
    add(cols, hyp, ref);
    art.appendChild(cols);
    return art;
  }

  var state = { page: 0, query: "", filter: "all" };
  var FILTERS = [["all", "all utterances"], ["wrong", "emotion wrong"], ["right", "emotion right"],
                 ["contradicted", "a contradicted claim"], ["failed", "decode failed"]];
  function matches(u) {
    var f = state.filter;
    if (f === "wrong" && u.ok !== false) return false;
    if (f === "right" && u.ok !== true) return false;
    if (f === "failed" && !u.err) return false;
    if (f === "contradicted" && !(u.c || []).some(function (c) { return c.v === "c"; })) return false;
    if (!state.query) return true;
    var q = state.query;
    var text = [u.k, u.t, u.rt, u.rd, u.e, u.re].concat((u.ds || []).map(function (p) { return p[0]; }));
    return text.some(function (s) { return s && String(s).toLowerCase().indexOf(q) >= 0; });
  }
  var list = document.getElementById("utt-list");
  var pager = document.getElementById("utt-pager");
  var info = el("span", "info");
  function render() {
    var sel = DATA.utts.filter(matches);
    var size = DATA.pageSize || 50;
    var pages = Math.max(1, Math.ceil(sel.length / size));
    state.page = Math.min(state.page, pages - 1);
    var frag = document.createDocumentFragment();
    sel.slice(state.page * size, (state.page + 1) * size).forEach(function (u) { frag.appendChild(card(u)); });
    list.replaceChildren(frag);
    info.textContent = sel.length + " of " + DATA.utts.length + " utterances \u00b7 page " + (state.page + 1) + " of " + pages;
    pager.replaceChildren(pagerButtons(pages));
    root.dataset.page = String(state.page + 1);
    root.dataset.shown = String(list.children.length);
  }
  function pagerButtons(pages) {
    var box = el("div", "pager");
    function btn(label, to, disabled) {
      var b = el("button", null, label);
      b.type = "button";
      b.disabled = disabled;
      b.addEventListener("click", function () { state.page = to; render(); list.scrollIntoView(); });
      return b;
    }
    add(box, btn("\u00ab first", 0, state.page === 0), btn("\u2039 previous", state.page - 1, state.page === 0),
        el("span", "pinfo", "page " + (state.page + 1) + " / " + pages),
        btn("next \u203a", state.page + 1, state.page >= pages - 1), btn("last \u00bb", pages - 1, state.page >= pages - 1));
    return box;
  }
  function controls() {
    var box = document.getElementById("utt-controls");
    var q = el("input");
    q.type = "search";
    q.placeholder = "search key, transcript, description, emotion";
    q.value = state.query;
    q.addEventListener("input", function () { state.query = q.value.trim().toLowerCase(); state.page = 0; render(); });
    var f = el("select");
    FILTERS.forEach(function (x) { var o = el("option", null, x[1]); o.value = x[0]; f.appendChild(o); });
    f.value = state.filter;
    f.addEventListener("change", function () { state.filter = f.value; state.page = 0; render(); });
    add(box, q, f, info);
    var legend = el("div", "legend");
    add(legend, el("span", null, "claims:"), el("mark", "ev ev-s", "supported"), el("mark", "ev ev-c", "contradicted"),
        el("mark", "ev ev-q", "uncertain"), el("mark", "ev ev-u", "not checkable"));
    box.appendChild(legend);
  }

  // -- timeline --------------------------------------------------------------------------------------
  function timeline(tl, first, at) {
    var sec = document.getElementById("timeline");
    sec.hidden = false;
    var rootEl = document.getElementById("tl-root");
    var player = null;
    if (tl.au) { player = audioEl(tl.au); player.preload = "metadata"; player.id = "tl-audio"; }
    if (tl.name) {
      var sm = tl.summary || {};
      var line = "recording: " + tl.name + " \u00b7 " + fmtTime(tl.duration) + " \u00b7 " + tl.segs.length + " segments";
      if (sm.failed) line += " (" + sm.failed + " failed)";
      if (typeof sm.coverage === "number") line += " \u00b7 speech " + (100 * sm.coverage).toFixed(0) + "%";
      if (sm.dominant_emotion) line += " \u00b7 mostly " + sm.dominant_emotion;
      rootEl.appendChild(el("p", "note", line));
    }
    if (player) rootEl.appendChild(player); else if (tl.an) rootEl.appendChild(el("p", "note", tl.an));
    var strip = el("div", "strip");
    strip.id = "tl-strip";
    var cursor = el("div", "cursor");
    var dur = tl.duration || 1;
    var detail = el("div", "tl-detail");
    var current = -1;
    function show(i, seek) {
      var s = tl.segs[i];
      if (!s) return;
      if (current >= 0 && strip.children[current]) strip.children[current].classList.remove("sel");
      current = i;
      root.dataset.segment = String(i + 1);
      strip.children[i].classList.add("sel");
      var d = el("div", "seg-detail");
      add(d, el("div", "uh", fmtTime(s.s) + " \u2013 " + fmtTime(s.e) + "  (segment " + (i + 1) + " of " + tl.segs.length + ")"));
      if (s.err) d.appendChild(el("p", "error", "decode failed: " + s.err));
      add(d, field("transcript", s.t));
      if (s.ds) { var f = field("description", ""); f.lastChild.appendChild(description(s.ds, s.c)); d.appendChild(f); }
      add(d, claimList(s.c, s.en));
      if (s.em) { var fe = field("emotion", ""); fe.lastChild.appendChild(emoChip(s.em, "hyp")); d.appendChild(fe); }
      if (s.p) d.appendChild(bars(s.p, s.em));
      detail.replaceChildren(d);
      if (seek && player) {
        player.currentTime = s.s;
        root.dataset.seek = player.currentTime.toFixed(3);
        var pr = player.play();
        if (pr && pr.catch) pr.catch(function () { /* autoplay refused: the position is still set */ });
      }
    }
    tl.segs.forEach(function (s, i) {
      var b = el("button", s.err ? "seg err" : "seg");
      b.type = "button";
      b.style.left = (100 * s.s / dur) + "%";
      b.style.width = Math.max(0.15, 100 * (s.e - s.s) / dur) + "%";
      if (!s.err) b.style.background = s.em ? color(s.em) : "#94a3b8";
      b.title = fmtTime(s.s) + "\u2013" + fmtTime(s.e) + (s.em ? " " + s.em : "") + (s.t ? ": " + s.t : "") + (s.err ? " (decode failed)" : "");
      b.addEventListener("click", function () { show(i, true); });
      strip.appendChild(b);
    });
    strip.appendChild(cursor);
    if (player) {
      player.addEventListener("timeupdate", function () {
        cursor.style.left = (100 * player.currentTime / dur) + "%";
        for (var i = 0; i < tl.segs.length; i++) {
          if (player.currentTime >= tl.segs[i].s && player.currentTime < tl.segs[i].e) { if (i !== current) show(i, false); break; }
        }
      });
    }
    var axis = el("div", "axis");
    for (var k = 0; k <= 4; k++) { var t = el("span", null, fmtTime(dur * k / 4)); t.style.left = (25 * k) + "%"; axis.appendChild(t); }
    var legend = el("div", "legend");
    var seen = {};
    tl.segs.forEach(function (s) { if (s.em && !seen[s.em]) { seen[s.em] = 1; legend.appendChild(emoChip(s.em)); } });
    add(rootEl, strip, axis, legend, detail);
    if (at !== null && !isNaN(at)) {  // #t=SECONDS: the segment playing at (or next after) that time
      var j = tl.segs.findIndex(function (s) { return s.e > at; });
      show(j >= 0 ? j : tl.segs.length - 1, true);
    } else if (tl.segs.length) show(first >= 0 && first < tl.segs.length ? first : 0, false);
    root.dataset.segment = String(current + 1);
  }

  // -- table of contents -----------------------------------------------------------------------------
  function toc() {
    var nav = document.getElementById("toc");
    document.querySelectorAll("main > section[id]").forEach(function (s) {
      if (s.hidden) return;
      var h = s.querySelector("h2");
      if (!h) return;
      var a = el("a", null, h.textContent);
      a.href = "#" + s.id;
      nav.appendChild(a);
    });
  }

  // Deep links: report.html#page=3&q=angry&filter=wrong&seg=12 (seg: a timeline segment, 1-based;
  // t=SECONDS: the segment at that time of the recording, with the player moved to its start).
  var HASH = {};
  location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
    var i = kv.indexOf("=");
    if (i > 0) HASH[decodeURIComponent(kv.slice(0, i))] = decodeURIComponent(kv.slice(i + 1));
  });
  if (HASH.q) state.query = HASH.q.toLowerCase();
  if (HASH.filter && FILTERS.some(function (f) { return f[0] === HASH.filter; })) state.filter = HASH.filter;
  if (HASH.page && +HASH.page >= 1) state.page = Math.floor(+HASH.page) - 1;
  controls();
  if (DATA.timeline) timeline(DATA.timeline, HASH.seg ? Math.floor(+HASH.seg) - 1 : 0, HASH.t !== undefined ? +HASH.t : null);
  render();
  toc();
  root.dataset.renderMs = performance.now().toFixed(1);
  root.dataset.ready = "1";
  // The frame that shows the cards: the next animation frame, then the task after it was presented.
  requestAnimationFrame(function () {
    setTimeout(function () { root.dataset.paintedMs = performance.now().toFixed(1); }, 0);
  });
  try {
    new PerformanceObserver(function (l) {
      l.getEntries().forEach(function (e) {
        if (e.name === "first-contentful-paint") root.dataset.fcpMs = e.startTime.toFixed(1);
        if (e.name === "first-paint") root.dataset.fpMs = e.startTime.toFixed(1);
      });
    }).observe({ type: "paint", buffered: true });
  } catch (e) { /* no paint timing in this browser */ }
})();
