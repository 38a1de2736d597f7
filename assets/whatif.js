/*
 * trajviz what-if, fast redraw: a what-if changes the paths, not the surface, so the
 * server sends only the new path data (trajviz.figures.restyle.restyle_data) and this
 * file restyles the figures already drawn, without rebuilding them:
 *   apply(fast, data) restyles each learner's path, start and end on the plane and each
 *     panel's series, y range and threshold line, and returns the new playback data
 *     (playback.js then moves heads, tails, cursors and dots);
 *   once no new what-if has come for SETTLE_MS, it names the variant in the
 *     whatif-shown Store: one full draw then redraws everything exactly (the colour
 *     range, the view box, the honesty line, notes), never while a slider is moving.
 * A figure drawn for another selection (another key, number of steps, 3D, a panel
 * whose axis changes between linear and log) is not restyled: the full draw comes at once.
 * window.trajvizStats.whatif keeps performance.now() of each applied update (tests, bench).
 */
(function () {
  "use strict";

  var SETTLE_MS = 400;
  var ANIMATE = {mode: "immediate", transition: {duration: 0}, frame: {duration: 0, redraw: false}};
  var settle = null;

  function graphDiv(id) {
    var el = document.getElementById(id);
    if (!el) { return null; }
    if (el.classList && el.classList.contains("js-plotly-plot")) { return el; }
    return el.querySelector(".js-plotly-plot");
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

  function isLog(gd) {
    return !!(gd._fullLayout.yaxis && gd._fullLayout.yaxis.type === "log");
  }

  // Whether a panel update changes nothing but its y range (a linear axis, or the same
  // log ticks): then plotly can move the traces and the axis without a full redraw.
  function sameTicks(gd, layout) {
    var ax = gd.layout.yaxis || {};
    var vals = layout["yaxis.tickvals"];
    if (vals === undefined) { return ax.tickvals === undefined || ax.tickvals === null; }
    return JSON.stringify(vals) === JSON.stringify(ax.tickvals) &&
           JSON.stringify(layout["yaxis.ticktext"]) === JSON.stringify(ax.ticktext);
  }

  function full(shown) {
    if (settle) { window.clearTimeout(settle); settle = null; }
    window.dash_clientside.set_props("whatif-shown", {data: shown});
  }

  function restyle(fast) {
    var main = graphDiv(fast.main.id);
    if (!drawn(main, fast) || !scatterOnly(main)) { return false; }
    var path = main._fullData[fast.main.traces[0]];
    if (!path || path._length !== fast.frames) { return false; }
    var panels = fast.panels.map(function (p) { return {p: p, gd: graphDiv(p.id)}; });
    var same = panels.every(function (e) {
      return !e.gd || (e.gd.layout && e.gd.layout.meta && e.gd.layout.meta.key === fast.key &&
                       e.gd._fullLayout && isLog(e.gd) === e.p.log);
    });
    if (!same) { return false; }
    window.Plotly.animate(main, {data: fast.main.data, traces: fast.main.traces}, ANIMATE);
    panels.forEach(function (e) {
      if (!e.gd || e.gd.offsetParent === null) { return; }  // a hidden set: the full draw
      if (sameTicks(e.gd, e.p.layout)) {  // data and range only: plotly's redraw-free path
        window.Plotly.animate(e.gd, {data: e.p.data, traces: e.p.traces,
                                     layout: {"yaxis.range": e.p.layout["yaxis.range"]}}, ANIMATE);
      } else {
        window.Plotly.update(e.gd, columns(e.p.data), e.p.layout, e.p.traces);
      }
    });
    return true;
  }

  var stats = window.trajvizStats = window.trajvizStats || {steps: {}};
  stats.whatif = stats.whatif || [];

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    trajviz_whatif: {
      apply: function (fast) {
        var nc = window.dash_clientside.no_update;
        if (!fast || !window.Plotly) { return nc; }
        if (!restyle(fast)) { full(fast.shown); return nc; }
        stats.whatif.push(window.performance.now());
        if (stats.whatif.length > 400) { stats.whatif.shift(); }
        if (settle) { window.clearTimeout(settle); }
        settle = window.setTimeout(function () { settle = null; full(fast.shown); }, SETTLE_MS);
        return fast.frame_data;
      }
    }
  });
}());
