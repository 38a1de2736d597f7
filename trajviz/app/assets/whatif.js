/*
 * trajviz what-if, fast redraw: a what-if changes the paths, not the surface, so a slider
 * change skips Dash's callbacks and the server sends only the new path data
 * (trajviz.app.whatif_route, trajviz.figures.restyle.restyle_data); this file restyles
 * the figures already drawn, without rebuilding them:
 *   change(...) (the lr and β sliders' and the optimiser's clientside callback) posts to ROUTE
 *     with fetch. Latest wins: the oldest request still out (its recomputation may be
 *     running) is kept, so its picture still shows while the slider moves; any other
 *     is aborted (the server drops a request that waits behind a newer one), and a reply
 *     older than one already drawn is dropped;
 *   answer(reply) puts the status and the summary in place (set_props) and restyles;
 *   apply(fast, frame) restyles each learner's path, start, end, tail and head on the
 *     plane and each panel's series, y range (only when it changed), threshold line,
 *     cursor and dots at the shown frame, one call per graph: new data alone is drawn
 *     directly (assets/direct.js: only the changed traces recomputed and drawn, not the
 *     whole figure's defaults), else by a redraw-free Plotly.animate (a new y range; or
 *     Plotly.update, new ticks). The plane and the first panel (the loss) are drawn at
 *     once, the other panels just after that paint, so the plane's paths show first;
 *     then it stores the new playback data for the next frames;
 *   once no new what-if has come for SETTLE_MS and no request is out, it names the
 *     variant in the whatif-shown Store: one full draw then redraws everything exactly
 *     (the colour range, the view box, the honesty line, notes, and the panels skipped),
 *     never while a slider is moving.
 * A figure drawn for another selection (another key, number of steps, 3D) is not
 * restyled: the full draw comes at once. Panels of the hidden set, and panels scrolled
 * out of view, wait for the full draw (as playback skips them while it plays).
 * window.trajvizStats.whatif keeps each applied update's {start, end, drawn} (performance.now();
 * drawn: the frame after every panel's call settled; tests and bench/whatif_page.py read
 * it); trajvizStats.whatifPosts counts the posts. The bench sets trajvizWhatifDirect and
 * trajvizWhatifStagger false to time the way before them (plotly's pass, all at once).
 */
(function () {
  "use strict";

  var ROUTE = "/_trajviz/whatif";  // trajviz.app.whatif_route.ROUTE, under the app's prefix:
  // trajviz.show serves an app at /<token>/ (Dash's requests_pathname_prefix)
  function route() {
    var config = document.getElementById("_dash-config");
    var prefix = "/";
    try { prefix = JSON.parse(config.textContent).requests_pathname_prefix || "/"; } catch (e) { /* "/" */ }
    return prefix.replace(/\/$/, "") + ROUTE;
  }
  var SETTLE_MS = 400;
  var ANIMATE = {mode: "immediate", transition: {duration: 0}, frame: {duration: 0, redraw: false}};
  var settle = null;
  var sent = 0, drawnSeq = 0, out = [];  // out: [{seq, ctrl}], oldest first

  function graphDiv(id) {  // playback.js's: the plotly div of a dcc.Graph id
    return window.dash_clientside.trajviz.graphDiv(id);
  }

  function drawn(gd, fast) {
    return !!(gd && gd._fullLayout && gd.data && gd.layout && gd.layout.meta &&
              gd.layout.meta.key === fast.key &&
              fast.main.traces.every(function (i) { return i < gd.data.length; }));
  }

  function scatterOnly(gd) {
    return (gd._fullData || []).every(function (t) { return t.type === "scatter"; });
  }

  function columns(data) {  // [{x, y}, ...] -> {x: [...], y: [...]} for Plotly.restyle
    var attrs = {};
    data.forEach(function (d, j) {
      Object.keys(d).forEach(function (name) {
        attrs[name] = attrs[name] || new Array(data.length);
        attrs[name][j] = d[name];
      });
    });
    return attrs;
  }

  // Whether a panel update changes nothing but its y range (the same axis type and
  // ticks): then plotly can move the traces and the axis without a full redraw.
  function sameTicks(gd, layout) {
    var ax = gd.layout.yaxis || {};
    var text = function (v) { return JSON.stringify(v === undefined ? null : v); };
    return (ax.type || "linear") === layout["yaxis.type"] &&
           text(ax.tickvals) === text(layout["yaxis.tickvals"]) &&
           text(ax.ticktext) === text(layout["yaxis.ticktext"]);
  }

  function sameRange(gd, range) {
    var r = (gd.layout.yaxis || {}).range;
    return !!(r && range && r.length === 2 && r[0] === range[0] && r[1] === range[1]);
  }

  // Out of sight: hidden by the panel set (display: none), or scrolled out of the window
  // or out of its scrolling column.
  function unseen(gd) {
    if (gd.offsetParent === null) { return true; }
    var r = gd.getBoundingClientRect();
    if (r.bottom < 0 || r.top > window.innerHeight || r.right < 0 || r.left > window.innerWidth) {
      return true;
    }
    var side = gd.closest ? gd.closest(".tv-side") : null;
    if (!side) { return false; }
    var s = side.getBoundingClientRect();
    return r.bottom < s.top || r.top > s.bottom;
  }

  // The summary and status of the last reply: shown at once in the "-live" elements
  // (plain DOM: no React render, which costs more than the rest of a change), handed to
  // Dash once the slider rests; the -live copies are emptied after Dash has drawn them.
  var text = null;
  var restyled = false;  // a what-if was restyled in since the last full draw

  function live(id, html) {
    var el = document.getElementById(id);
    if (el) { el.innerHTML = html; }
  }

  function handOver() {
    if (!text) { return; }
    var set = window.dash_clientside.set_props, t = text;
    text = null;
    set("whatif-status", {children: t.status});
    if (t.summary !== undefined) { set("summary", {children: t.summary}); }
    window.requestAnimationFrame(function () {
      window.setTimeout(function () {
        if (text) { return; }  // a newer reply is shown there now
        live("whatif-status-live", "");
        live("summary-live", "");
      }, 0);
    });
  }

  // Plotly reports the y range a panel's animate sets as a relayout; dcc.Graph would
  // store it (relayoutData, which nothing here reads) and answer with a Plotly.react of
  // its figure, the old paths. So that event is not passed on while ``quiet`` runs.
  function quiet(gd, run) {
    if (!gd.emit.tvQuiet) {
      var emit = gd.emit;
      gd.emit = function (event) {
        if (gd.tvQuiet && event === "plotly_relayout") { return undefined; }
        return emit.apply(this, arguments);
      };
      gd.emit.tvQuiet = true;
    }
    gd.tvQuiet = (gd.tvQuiet || 0) + 1;
    var done = function () { gd.tvQuiet -= 1; };
    var out = run();
    if (out && out.then) { out.then(done, done); } else { done(); }
    return out;
  }

  function full(shown) {
    if (settle) { window.clearTimeout(settle); settle = null; }
    cancelWaiting();
    restyled = false;
    handOver();
    window.dash_clientside.set_props("whatif-shown", {data: shown});
  }

  // New data for traces of ``gd``, the layout unchanged: drawn directly (assets/direct.js:
  // only those traces recomputed and drawn), else by plotly's redraw-free animate.
  function newData(gd, traces, data) {
    var direct = (window.dash_clientside.trajviz_direct || {}).restyle;
    if (direct && window.trajvizWhatifDirect !== false && direct(gd, traces, data)) {
      return null;  // bench/whatif_page.py's A/B sets trajvizWhatifDirect false
    }
    return window.Plotly.animate(gd, {data: data, traces: traces}, ANIMATE);
  }

  // One panel's update at frame ``moved`` (frameUpdates): its series, y range (only when it
  // changed), threshold line, cursor and dots, in one plotly call. Returns its promise.
  function panelUpdate(e, moved) {
    var cur = moved[e.p.id] || {traces: [], data: []};
    var traces = e.p.traces.concat(cur.traces), data = e.p.data.concat(cur.data);
    var range = e.p.layout["yaxis.range"];
    if (sameTicks(e.gd, e.p.layout)) {  // data (and range): plotly's redraw-free path
      var frameOf = {data: data, traces: traces};
      if (sameRange(e.gd, range)) {
        return newData(e.gd, traces, data);
      }
      frameOf.layout = {"yaxis.range": range};
      return quiet(e.gd, function () { return window.Plotly.animate(e.gd, frameOf, ANIMATE); });
    }
    return quiet(e.gd, function () {
      return window.Plotly.update(e.gd, columns(data), e.p.layout, traces);
    });
  }

  // Panel updates not yet handed to plotly: the plane and the first panel are drawn at
  // once, the other panels in one go just after the next paint (an animation frame, then
  // a task), so the plane's new paths are on screen first; a newer what-if or the full draw
  // replaces what still waits here.
  var waiting = [], turn = 0;

  function cancelWaiting() {
    waiting = [];
    turn += 1;
  }

  function afterPaint() {
    var mine = turn;
    window.requestAnimationFrame(function () {
      window.setTimeout(function () {
        if (mine !== turn) { return; }  // replaced meanwhile
        var runs = waiting;
        waiting = [];
        runs.forEach(function (run) { run(); });
      }, 0);
    });
  }

  // Stamps entry.drawn (performance.now() at the animation frame after every plotly call of
  // this update settled; window.trajvizStats.whatif, read by bench/whatif_page.py).
  function tracker(entry) {
    var open = 1;
    function settled() {
      open -= 1;
      if (open === 0) {
        window.requestAnimationFrame(function () { entry.drawn = window.performance.now(); });
      }
    }
    return {
      add: function (promise) {
        open += 1;
        if (promise && promise.then) { promise.then(settled, settled); } else { settled(); }
      },
      hold: function () { open += 1; },  // a call to come: its run calls close
      close: settled
    };
  }

  // Restyle the figures drawn for fast.key at frame index ``frame``: the changed paths,
  // plus the heads, tails, cursors and dots of that frame (playback.js's frameUpdates),
  // one call per graph (newData, panelUpdate). False when a figure cannot take it.
  function restyle(fast, frame, entry) {
    var main = graphDiv(fast.main.id);
    if (!drawn(main, fast) || !scatterOnly(main)) { return false; }
    var path = main._fullData[fast.main.traces[0]];
    if (!path || path._length !== fast.frames) { return false; }
    var panels = fast.panels.map(function (p) { return {p: p, gd: graphDiv(p.id)}; })
      .filter(function (e) { return e.gd && !unseen(e.gd); });  // the rest: the full draw
    var same = panels.every(function (e) {
      return (e.gd.layout && e.gd.layout.meta && e.gd.layout.meta.key === fast.key &&
                       e.gd._fullLayout &&
                       e.p.traces.every(function (i) { return i < e.gd.data.length; }));
    });
    if (!same) { return false; }
    var playback = window.dash_clientside.trajviz;
    var k = playback.clamp(frame, fast.frames);
    var moved = playback.frameUpdates(fast.frame_data, k);
    var mine = moved[fast.main.id] || {traces: [], data: []};
    var track = tracker(entry);
    cancelWaiting();
    track.add(newData(main, fast.main.traces.concat(mine.traces), fast.main.data.concat(mine.data)));
    var stagger = window.trajvizWhatifStagger !== false;  // bench/whatif_page.py's A/B: false
    panels.forEach(function (e, i) {
      if (i === 0 || !stagger) {
        track.add(panelUpdate(e, moved));
      } else {
        track.hold();
        waiting.push(function () { track.add(panelUpdate(e, moved)); track.close(); });
      }
    });
    if (waiting.length) { afterPaint(); }
    track.close();
    return true;
  }

  var stats = window.trajvizStats = window.trajvizStats || {steps: {}};
  stats.whatif = stats.whatif || [];
  stats.whatifPosts = stats.whatifPosts || 0;

  function pending() {
    return out.length > 0;
  }

  function armSettle(shown) {
    if (settle) { window.clearTimeout(settle); }
    settle = window.setTimeout(function rest() {
      if (pending()) { settle = window.setTimeout(rest, SETTLE_MS); return; }
      settle = null;
      full(shown);
    }, SETTLE_MS);
  }

  function apply(fast, frame) {
    var entry = {start: window.performance.now()};
    if (!restyle(fast, frame, entry)) { full(fast.shown); return; }
    restyled = true;
    entry.end = window.performance.now();
    stats.whatif.push(entry);
    if (stats.whatif.length > 400) { stats.whatif.shift(); }
    armSettle(fast.shown);
    // the playback data for the next frames, until the full draw brings its own (a Dash
    // store update costs a React render: not while the slider moves)
    window.dash_clientside.trajviz.overlay("inner step", fast.frame_data);
  }

  // One reply of the route (trajviz.app.whatif_route), drawn. ``shownBefore``: what the
  // whatif-shown Store held when the change was made (null: the stored run).
  function answer(reply, frame, shownBefore) {
    if (reply.superseded) { return; }
    if (reply.job && reply.progress) {  // slow: the progress row and the page's poll take it
      var set = window.dash_clientside.set_props, ids = reply.progress;
      set(ids.job, {data: reply.job});
      set(ids.row, {style: {}});
      set(ids.text, {children: reply.status});
      set(ids.poll, {disabled: false});
    }
    if (reply.shown === null && !reply.fast && shownBefore === null && !restyled) {
      return;  // the run's own settings, and the page shows the stored run already
    }
    if (reply.fast) {
      apply(reply.fast, frame);
    } else if (Object.prototype.hasOwnProperty.call(reply, "shown")) {
      full(reply.shown);
    }
    if (reply.status !== undefined) {
      // a refusal keeps the summary of the paths drawn
      text = {status: reply.status,
              summary: reply.summary !== undefined ? reply.summary : (text || {}).summary};
      var status = document.getElementById("whatif-status-live");
      if (status) { status.textContent = reply.status; }
      if (reply.summary_html !== undefined) { live("summary-live", reply.summary_html); }
      if (!settle) { handOver(); }  // nothing to wait for: hand over now
    }
  }

  function forget(entry) {
    out = out.filter(function (e) { return e !== entry; });
  }

  function post(body, frame, shownBefore) {
    var seq = ++sent;
    out.slice(1).forEach(function (e) { e.ctrl.abort(); });  // waiting: replaced by this one
    out = out.slice(0, 1);
    var entry = {seq: seq, ctrl: new window.AbortController()};
    out.push(entry);
    stats.whatifPosts += 1;
    window.fetch(route(), {method: "POST", headers: {"Content-Type": "application/json"},
                         body: JSON.stringify(body), signal: entry.ctrl.signal,
                         credentials: "same-origin"})
      .then(function (r) { return r.status === 200 ? r.json() : null; })
      .then(function (reply) {
        forget(entry);
        if (!reply || seq < drawnSeq) { return; }  // a newer reply is drawn already
        if (!reply.superseded) { drawnSeq = seq; }
        window.dash_clientside.trajviz_whatif.answer(reply, frame(), shownBefore);
      })
      .catch(function () { forget(entry); });  // aborted, or the server went away
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    trajviz_whatif: {
      change: function (lr, beta, opt, steps, run, view, task, learners, mode, frame, shown, group) {
        if (!window.fetch || !window.Plotly) { return; }
        var playback = window.dash_clientside.trajviz;
        post({run: run, lr: lr, beta: beta, opt: opt, steps: steps, view: view, task: task,
              learners: learners, mode: mode, frame: frame, group: group},
             function () { return playback.shownFrame("inner step", frame); },
             shown === undefined ? null : shown);
      },
      apply: apply,
      answer: answer
    }
  });
}());
