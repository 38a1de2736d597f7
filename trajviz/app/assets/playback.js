/*
 * trajviz clientside playback: one frame index drives every graph, in the browser.
 *
 * The server sends each figure once per selection, plus a compact "frame data"
 * Store (see trajviz.figures.playback.frame_data, which also carries
 * every trace index this file uses: nothing here recomputes one). Here:
 *   transport(...) turns play/pause, step, slider and interval ticks into the
 *                  frame index (no server request: dcc.Interval + clientside);
 *   render(frame, data) moves each learner's head and tail on the main graph and
 *                  the cursor line and dots of every panel: Plotly.animate
 *                  (redraw: false) on scatter-only figures (the 2D surface is an
 *                  image plus a line trace), in 3D the moving traces' own WebGL
 *                  objects (update3d: the surface is never re-sent), and
 *                  Plotly.restyle on anything else;
 *   speed(ms) sets the interval;
 *   frameUpdates(data, k) the traces frame k moves, per graph (whatif.js uses it too).
 * A graph is only touched when its figure's layout.meta.key matches the data's
 * key, so a figure still on its way from the server is never animated with
 * another selection's trace indices.
 */
(function () {
  "use strict";

  var ANIMATE = {mode: "immediate", transition: {duration: 0}, frame: {duration: 0, redraw: false}};

  function graphDiv(id) {
    var el = document.getElementById(id);
    if (!el) { return null; }
    if (el.classList && el.classList.contains("js-plotly-plot")) { return el; }
    return el.querySelector(".js-plotly-plot");
  }

  function ready(gd, key) {
    return !!(gd && gd._fullLayout && gd.data && gd.layout && gd.layout.meta &&
              gd.layout.meta.key === key);
  }

  function clamp(value, frames) {
    var f = Math.round(Number(value) || 0);
    return Math.max(0, Math.min(Math.max(frames - 1, 0), f));
  }

  function at(list, k) {
    var v = list ? list[k] : null;
    return v === undefined ? null : v;
  }

  // Call fn(gd) once the graph shows the figure with this key (retry while it is drawn).
  function whenReady(id, key, fn, tries) {
    var gd = graphDiv(id);
    if (ready(gd, key)) { fn(gd); return; }
    if ((tries || 0) < 40) {
      window.setTimeout(function () { whenReady(id, key, fn, (tries || 0) + 1); }, 50);
    }
  }

  // Plotly.animate's redraw-free path is the smooth one, but it only keeps scatter
  // traces: on a figure with a contour it would drop the surface, so such a figure is
  // restyled instead (a full redraw, tens of ms).
  function scatterOnly(gd) {
    return (gd._fullData || []).every(function (t) { return t.type === "scatter"; });
  }

  // The WebGL scene of a 3D figure (plotly's own object), or null.
  function sceneOf(gd) {
    var scene = gd._fullLayout && gd._fullLayout.scene && gd._fullLayout.scene._scene;
    return scene && scene.traces && scene.glplot ? scene : null;
  }

  // 3D: move only the given traces. Plotly.restyle would recompute and re-upload every
  // trace of the scene, the surface too (150 ms a frame on a busy machine); here each
  // moving trace's data is set in gd.data and gd._fullData (so any later redraw draws the
  // same) and handed to its own WebGL object, then the scene is drawn once. The surface's
  // object is never touched. False (nothing changed) where plotly's objects are not as
  // expected: the caller restyles instead.
  function update3d(gd, traces, data) {
    var scene = sceneOf(gd);
    if (!scene) { return false; }
    var full = traces.map(function (i) { return gd._fullData[i]; });
    var objs = full.map(function (fd, j) {
      return fd && fd.index === traces[j] && fd.type === "scatter3d" ? scene.traces[fd.uid] : null;
    });
    if (!objs.every(function (o) { return o && typeof o.update === "function"; })) { return false; }
    traces.forEach(function (i, j) {
      var d = data[j];
      Object.keys(d).forEach(function (name) { gd.data[i][name] = d[name]; full[j][name] = d[name]; });
      full[j]._length = d.x.length;
      objs[j].update(full[j]);
    });
    scene.glplot.redraw();
    stats.moves3d = (stats.moves3d || 0) + 1;
    return true;
  }

  function update(gd, traces, data) {
    var valid = traces.every(function (i) { return i >= 0 && i < gd.data.length; });
    if (!valid || !window.Plotly) { return; }
    if (sceneOf(gd) && !stats.restyle3d && update3d(gd, traces, data)) { return; }
    if (!scatterOnly(gd)) {
      var attrs = {};
      data.forEach(function (d, j) {
        Object.keys(d).forEach(function (name) {
          attrs[name] = attrs[name] || new Array(data.length);
          attrs[name][j] = d[name];
        });
      });
      window.Plotly.restyle(gd, attrs, traces);
    } else {
      window.Plotly.animate(gd, {data: data, traces: traces}, ANIMATE);
    }
  }

  // The spectrum panel (trajviz.figures.spectrum): each learner's density curve becomes the
  // one of the kept step shown at frame k, and the label says which step that is.
  function spectrumFrame(entry, s, k) {
    if (!s) { return; }
    var j = at(s.index, k);
    if (j === null) { return; }
    s.traces.forEach(function (t, i) {
      entry.traces.push(t);
      entry.data.push({x: s.x, y: (s.curves[i] && s.curves[i][j]) || []});
    });
    entry.traces.push(s.label);
    entry.data.push({x: [s.label_x], y: [s.y], text: [at(s.texts, k)]});
  }

  // The traces one frame index moves, per graph id: {id: {traces, data}} (the main graph's
  // heads and tails; each panel's cursor line and dots). whatif.js reuses it.
  function frameUpdates(fd, k) {
    var out = {}, main = fd.main, xs = fd.xs || [];
    var m = out[main.id] = {traces: [], data: []};
    main.groups.forEach(function (g) {
      var lo = Math.max(0, k - main.tail);
      var tail = {x: g.x.slice(lo, k + 1), y: g.y.slice(lo, k + 1)};
      var head = {x: [at(g.x, k)], y: [at(g.y, k)], customdata: [xs[k]]};
      if (main.three_d && g.z) {
        tail.z = g.z.slice(lo, k + 1);
        head.z = [at(g.z, k)];
      }
      m.traces.push(g.tail, g.head);
      m.data.push(tail, head);
    });
    (fd.panels || []).forEach(function (p) {
      var entry = out[p.id] = out[p.id] || {traces: [], data: []};
      if (p.spectrum !== undefined) { spectrumFrame(entry, p.spectrum, k); return; }
      var x = xs[k];
      entry.traces.push(p.cursor);
      entry.data.push({x: [x, x], y: [p.lo, p.hi]});
      if (p.dots !== null && p.dots !== undefined) {
        entry.traces.push(p.dots);
        entry.data.push({
          x: p.series.map(function () { return x; }),
          y: p.series.map(function (s) { return at(s, k); })
        });
      }
    });
    return out;
  }

  // While a player plays, panels nobody can see are skipped: hidden by the panel set
  // (display: none) or scrolled out of the window; each costs a Plotly.animate a frame.
  // One scrolled into view is drawn at the next frame, and the render that follows a
  // pause or the last frame draws them all, so no panel is left stale.
  function hidden(gd) {
    if (gd.offsetParent === null) { return true; }
    var r = gd.getBoundingClientRect();
    return r.bottom < 0 || r.top > window.innerHeight || r.right < 0 || r.left > window.innerWidth;
  }

  // A figure the server has just drawn at frame k (its layout.meta.frame) already shows
  // frame k: moving its traces again would cost a redraw of every graph after each full draw
  // (a what-if, a new selection) for nothing. layout.tvFrame marks a layout this file has
  // moved since: a figure from the server comes with a new layout object, without it.
  function drawnAt(gd, k) {
    var layout = gd.layout, fresh = layout.tvFrame === undefined && layout.meta.frame === k;
    layout.tvFrame = k;
    return fresh;
  }

  function renderFrame(fd, k, playing) {
    var updates = frameUpdates(fd, k);
    Object.keys(updates).forEach(function (id) {
      whenReady(id, fd.key, function (gd) {
        if (drawnAt(gd, k)) { stats.skipped = (stats.skipped || 0) + 1; return; }
        if (playing && id !== fd.main.id && hidden(gd)) { return; }
        update(gd, updates[id].traces, updates[id].data);
      });
    });
  }

  function playLabel(playing) { return playing ? "❚❚ Pause" : "▶ Play"; }

  // Steps actually taken, for tests and the benchmark: performance.now() of each new
  // frame index per player label ("inner step", "meta-step"), the last 400 kept; and
  // moves3d, the 3D frames drawn by moving their traces alone (update3d). The benchmark
  // sets restyle3d to measure the full restyle it replaces.
  var stats = window.trajvizStats = window.trajvizStats || {steps: {}};
  var showing = {};  // the frame index each player's graphs show now, by label
  var rendered = {};  // the frame data each player rendered last, by label
  var overlays = {};  // {base, data}: data drawn in place of base (overlay), by label
  function recordStep(label, k) {
    showing[label] = k;
    var list = stats.steps[label] = stats.steps[label] || [];
    if (!list.length || list[list.length - 1].k !== k) {
      list.push({k: k, t: window.performance.now()});
      if (list.length > 400) { list.shift(); }
    }
  }

  // ---------------------------------------------------------------- page controls
  // Keyboard: Space plays/pauses, ←/→ step, on the visible tab's player (not while typing).
  // ☰ folds the controls, ⛶ presentation mode; a double-click on a learner solos it,
  // a second one brings the others back.
  function visiblePlayer() {
    var ids = ["inner", "meta"];
    for (var i = 0; i < ids.length; i++) {
      var b = document.getElementById(ids[i] + "-play");
      if (b && b.offsetParent !== null) { return ids[i]; }
    }
    return null;
  }

  function typing(el) {
    if (!el) { return false; }
    var tag = (el.tagName || "").toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || el.isContentEditable ||
           (el.getAttribute && el.getAttribute("role") === "slider");  // ←/→ move that slider
  }

  function onKey(ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) { return; }
    var p = visiblePlayer();
    if (!p) { return; }
    var button = {" ": "play", "Spacebar": "play", "ArrowLeft": "back", "ArrowRight": "fwd"}[ev.key];
    if (!button) { return; }
    ev.preventDefault();
    document.getElementById(p + "-" + button).click();
  }

  function resized() {
    window.setTimeout(function () { window.dispatchEvent(new Event("resize")); }, 30);
  }

  // Presentation type: every graph's base font at PRESENT_FONT while the page presents,
  // kept across redraws. A figure from the server (a new slice, task, learner, frame or
  // mode) comes with the screen font, so each graph is re-checked after every redraw
  // (plotly_afterplot); graphs drawn later (another tab, the birth map) are found by a
  // scan every SCAN_MS while presenting. Leaving presentation puts the screen font back.
  var PRESENT_FONT = 16, SCAN_MS = 400, scanning = null;

  function presenting() {
    var app = document.querySelector(".tv-app");
    return !!(app && app.classList.contains("tv-present"));
  }

  // The layout values presentation changes: the base font, the title's font, a top margin
  // that holds the larger title and its subtitle, and a legend under the plot moved to the
  // figure's bottom edge, below the larger axis title, with the bottom margin to hold both.
  // Every value is a fixed target or the larger of the figure's own and a floor, never
  // "the current one plus something": after the relayout that sets them they compare equal,
  // so the afterplot that follows changes nothing (no relayout loop). gd.tvScreen keeps the
  // figure's own values while presenting, to put back after.
  var PRESENT_TOP = 84, PRESENT_BOTTOM = 92;

  function present3d(gd) {
    return !!(gd._fullLayout && gd._fullLayout.scene);
  }

  function presentValues(gd) {
    var l = gd.layout, out = {"font.size": PRESENT_FONT};
    var m = l.margin || {};
    if (l.title && l.title.font && l.title.font.size) { out["title.font.size"] = PRESENT_FONT + 2; }
    if (l.title && l.title.subtitle && l.title.subtitle.text && typeof m.t === "number") {
      out["margin.t"] = Math.max(m.t, PRESENT_TOP);
    }
    if (l.legend && l.legend.orientation === "h" && (l.legend.y < 0 || l.legend.yref === "container")) {
      if (typeof m.b === "number" && !present3d(gd)) {  // a 2D plot: the axis title is below it
        out["margin.b"] = Math.max(m.b, PRESENT_BOTTOM);
        out["legend.yref"] = "container";
        out["legend.y"] = 0;
        out["legend.yanchor"] = "bottom";
      } else {
        out["legend.y"] = -0.16;
      }
    }
    return out;
  }

  function get(obj, path) {
    return path.split(".").reduce(function (o, k) { return o && o[k]; }, obj);
  }

  function fitFont(gd) {
    if (!window.Plotly || !gd._fullLayout || !gd.layout) { return; }
    var change = {};
    if (presenting()) {
      var want = presentValues(gd), screen = {};
      Object.keys(want).forEach(function (k) {
        var have = get(gd.layout, k);
        if (have !== want[k]) { change[k] = want[k]; screen[k] = have === undefined ? null : have; }
      });
      if (Object.keys(change).length) { gd.tvScreen = Object.assign({}, gd.tvScreen, screen); }
    } else if (gd.tvScreen) {
      Object.keys(gd.tvScreen).forEach(function (k) {
        if (get(gd.layout, k) !== gd.tvScreen[k]) { change[k] = gd.tvScreen[k]; }
      });
      delete gd.tvScreen;
    }
    if (Object.keys(change).length) { window.Plotly.relayout(gd, change); }
  }

  // One afterplot listener per graph; plotly drops listeners when it replots from scratch
  // (its event emitter is replaced), so the mark lives on the emitter.
  function watchFont(gd) {
    if (!gd.on) { return; }
    var owner = gd._ev || gd;
    if (owner.tvFontWatch) { return; }
    owner.tvFontWatch = true;
    gd.on("plotly_afterplot", function () { if (presenting()) { fitFont(gd); } });
  }

  function setFonts() {
    Array.prototype.forEach.call(document.querySelectorAll(".js-plotly-plot"), function (gd) {
      watchFont(gd);
      fitFont(gd);
    });
    if (presenting() && scanning === null) {
      scanning = window.setInterval(setFonts, SCAN_MS);
    } else if (!presenting() && scanning !== null) {
      window.clearInterval(scanning);
      scanning = null;
    }
  }

  function onClick(ev) {
    var t = ev.target && ev.target.closest ? ev.target.closest("button") : null;
    if (!t) { return; }
    var app = document.querySelector(".tv-app");
    if (t.id === "sidebar-toggle" && app) {
      app.classList.toggle("tv-folded");
      if (app.classList.contains("tv-present") && !app.classList.contains("tv-folded")) {
        app.classList.remove("tv-present");
        setFonts();
      }
      resized();
    } else if (t.id === "present-toggle" && app) {
      var on = !app.classList.contains("tv-present");
      app.classList.toggle("tv-present", on);
      app.classList.toggle("tv-folded", on);
      setFonts();
      resized();
    }
  }

  function onDoubleClick(ev) {
    var box = document.getElementById("learner-toggles");
    var label = ev.target && ev.target.closest ? ev.target.closest("label") : null;
    if (!box || !label || !box.contains(label)) { return; }
    var input = label.querySelector("input");
    if (!input || input.disabled || !window.dash_clientside.set_props) { return; }
    ev.preventDefault();
    // alone already (the double-click's two clicks leave the boxes as they were): all back
    var boxes = Array.prototype.slice.call(box.querySelectorAll("input[type=checkbox]"));
    var on = boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
    var every = boxes.filter(function (b) { return !b.disabled; }).map(function (b) { return b.value; });
    var alone = on.length === 1 && on[0] === input.value;
    window.dash_clientside.set_props("learner-toggles", {value: alone ? every : [input.value]});
  }

  document.addEventListener("keydown", onKey);
  document.addEventListener("click", onClick);
  document.addEventListener("dblclick", onDoubleClick);

  // Playback keeps time by the clock, not by counting ticks: a tick sets the frame to
  // where the clock says it should be (start frame + elapsed / interval), so a busy
  // browser that delivers ticks late skips a frame instead of playing slower.
  var clocks = {};

  function clockFrame(key, f, ms) {
    var now = window.performance.now();
    var c = clocks[key];
    if (!c || c.ms !== ms) { c = clocks[key] = {t0: now - ms, f0: f - 1, ms: ms}; }
    return Math.max(f, c.f0 + Math.floor((now - c.t0) / ms));
  }

  var trajviz = {
    transport: function (nPlay, nTick, nBack, nFwd, slider, data, frame, disabled, ms) {
      var nc = window.dash_clientside.no_update;
      if (!data) { return [nc, nc, true, playLabel(false)]; }
      var frames = data.frames || 1;
      var last = frames - 1;
      var playing = disabled === false;
      var f = clamp(frame, frames);
      var trig = (window.dash_clientside.callback_context.triggered || []).map(function (t) {
        return t.prop_id;
      });
      var has = function (suffix) {
        return trig.some(function (p) { return p.slice(-suffix.length) === suffix; });
      };
      var key = data.label;
      var step = Number(ms) || 400;
      if (has("-play.n_clicks")) {
        if (playing) { playing = false; } else {
          playing = true;
          if (f >= last) { f = 0; }
          clocks[key] = {t0: window.performance.now(), f0: f, ms: step};
        }
      } else if (has("-interval.n_intervals")) {
        if (!playing) { return [nc, nc, nc, nc]; }
        var next = Math.min(clockFrame(key, f, step), last);
        if (next === f && f < last) { return [nc, nc, nc, nc]; }
        f = next;
        if (f >= last) { playing = false; } else { return [f, f, nc, nc]; }  // still playing
      } else if (has("-back.n_clicks")) {
        f = Math.max(f - 1, 0); playing = false;
      } else if (has("-fwd.n_clicks")) {
        f = Math.min(f + 1, last); playing = false;
      } else if (has("-slider.value")) {
        f = clamp(slider, frames);
      } else if (has("-data.data")) {
        f = clamp(data.frame !== undefined ? data.frame : f, frames);
      }
      if (!playing) { delete clocks[key]; }
      return [f, f, !playing, playLabel(playing)];
    },

    render: function (frame, data) {
      if (!data) { return "no learner ticked"; }
      var k = clamp(frame, data.frames);
      recordStep(data.label, k);
      var xs = data.xs || [];
      rendered[data.label] = data;
      var over = overlays[data.label];
      renderFrame(over && over.base === data ? over.data : data, k, !!clocks[data.label]);
      var shown = xs.length ? xs[k] : k;
      var total = xs.length ? xs[xs.length - 1] : data.frames - 1;
      return data.label + " " + shown + " of " + total;
    },

    speed: function (ms) {
      return Number(ms) || 400;
    },

    // Frame data drawn in place of the player's present data, until the server sends
    // new data (whatif.js: a what-if's paths while a slider moves; no Dash store update).
    overlay: function (label, data) {
      overlays[label] = {base: rendered[label], data: data};
    },

    // The frame index the player ``label`` shows now (whatif.js), else ``fallback``.
    shownFrame: function (label, fallback) {
      return showing[label] === undefined ? fallback : showing[label];
    },

    frameUpdates: frameUpdates,
    clamp: clamp,
    graphDiv: graphDiv
  };

  window.dash_clientside = Object.assign({}, window.dash_clientside, {trajviz: trajviz});
}());
