/*
 * trajviz what-if, fast redraw: a what-if changes the paths, not the surface, so the
 * server sends only the new path data (trajviz.figures.restyle.restyle_data) and this
 * file restyles the figures already drawn, without rebuilding them:
 *   apply(fast, frame) restyles each learner's path, start, end, tail and head on the
 *     plane and each panel's series, y range, threshold line, cursor and dots at the
 *     shown frame, in one redraw-free Plotly.animate per graph, then (after the paint)
 *     stores the new playback data for the next frames;
 *   once no new what-if has come for SETTLE_MS, it names the variant in the
 *     whatif-shown Store: one full draw then redraws everything exactly (the colour
 *     range, the view box, the honesty line, notes), never while a slider is moving.
 * A figure drawn for another selection (another key, number of steps, 3D) is not
 * restyled: the full draw comes at once. Panels of the hidden set wait for the full draw.
 * window.trajvizStats.whatif keeps each applied update's {start, end} (performance.now();
 * tests and bench/whatif_page.py read it).
 */
(function () {
  "use strict";

  var SETTLE_MS = 400;
  var ANIMATE = {mode: "immediate", transition: {duration: 0}, frame: {duration: 0, redraw: false}};
  var settle = null;

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

  function full(shown) {
    if (settle) { window.clearTimeout(settle); settle = null; }
    window.dash_clientside.set_props("whatif-shown", {data: shown});
  }

  // Restyle the figures drawn for fast.key at frame index ``frame``: the changed paths,
  // plus the heads, tails, cursors and dots of that frame (playback.js's frameUpdates),
  // one redraw-free Plotly.animate per graph. False when a figure cannot take it.
  function restyle(fast, frame) {
    var main = graphDiv(fast.main.id);
    if (!drawn(main, fast) || !scatterOnly(main)) { return false; }
    var path = main._fullData[fast.main.traces[0]];
    if (!path || path._length !== fast.frames) { return false; }
    var panels = fast.panels.map(function (p) { return {p: p, gd: graphDiv(p.id)}; })
      .filter(function (e) { return e.gd && e.gd.offsetParent !== null; });  // hidden: the full draw
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
    window.Plotly.animate(main, {data: fast.main.data.concat(mine.data),
                                 traces: fast.main.traces.concat(mine.traces)}, ANIMATE);
    panels.forEach(function (e) {
      var cur = moved[e.p.id] || {traces: [], data: []};
      var traces = e.p.traces.concat(cur.traces), data = e.p.data.concat(cur.data);
      if (sameTicks(e.gd, e.p.layout)) {  // data and range only: plotly's redraw-free path
        window.Plotly.animate(e.gd, {data: data, traces: traces,
                                     layout: {"yaxis.range": e.p.layout["yaxis.range"]}}, ANIMATE);
      } else {
        window.Plotly.update(e.gd, columns(data), e.p.layout, traces);
      }
    });
    return true;
  }

  var stats = window.trajvizStats = window.trajvizStats || {steps: {}};
  stats.whatif = stats.whatif || [];

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    trajviz_whatif: {
      apply: function (fast, frame) {
        var nc = window.dash_clientside.no_update;
        if (!fast || !window.Plotly) { return nc; }
        var start = window.performance.now();
        if (!restyle(fast, frame)) { full(fast.shown); return nc; }
        stats.whatif.push({start: start, end: window.performance.now()});
        if (stats.whatif.length > 400) { stats.whatif.shift(); }
        if (settle) { window.clearTimeout(settle); }
        settle = window.setTimeout(function () { settle = null; full(fast.shown); }, SETTLE_MS);
        // the new playback data once the picture is painted (Dash's bookkeeping of a
        // store update costs tens of ms; the picture should not wait for it)
        window.requestAnimationFrame(function () {
          window.setTimeout(function () {
            window.dash_clientside.set_props("inner-data", {data: fast.frame_data});
          }, 0);
        });
        return nc;
      }
    }
  });
}());
