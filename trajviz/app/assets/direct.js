/*
 * trajviz: new x/y data for some scatter traces of a drawn 2D figure, drawn without
 * plotly's whole-figure pass. Plotly.animate (and restyle, update) first recomputes the
 * defaults of every trace and of the layout (supplyDefaults), whatever changed: on the
 * plane's 33 traces that is most of a what-if's redraw. Here only the changed traces are
 * recomputed (their module's calc) and drawn (the cartesian plot of those traces), the
 * steps Plotly.animate's redraw-free path takes after its defaults pass; what it draws
 * is the same SVG (tests/test_browser_whatif.py compares them).
 *   dash_clientside.trajviz_direct.restyle(gd, traces, data) -> true when drawn; false,
 *     with nothing changed, when the figure or the data are not of that simple kind (not
 *     one cartesian subplot of visible scatter traces; a trace's points appear or vanish;
 *     a key other than x, y and customdata), or after an unexpected error (then plotly's
 *     own pass, which the caller makes next, redoes every trace from gd.data): the caller
 *     then uses Plotly.animate.
 * It relies on plotly.js internals (_fullData, calcdata, the trace module's calc, the
 * base plot module's plot), checked before use; assets/whatif.js calls it for the what-if's
 * fast redraw, and the full draw that follows when the slider rests rebuilds the figure
 * through Dash anyway.
 */
(function () {
  "use strict";

  var KEYS = {x: true, y: true, customdata: true};  // what a scatter's calc reads here

  function length(values) {
    return values && typeof values.length === "number" ? values.length : -1;
  }

  // The cartesian base plot module when the figure and the update suit the direct path.
  function suited(gd, traces, data) {
    var full = gd && gd._fullLayout, fullData = gd && gd._fullData;
    if (!full || !fullData || !gd.calcdata || !Array.isArray(full._basePlotModules) ||
        full._basePlotModules.length !== 1) { return null; }
    var base = full._basePlotModules[0];
    if (base.name !== "cartesian" || typeof base.plot !== "function" ||
        traces.length !== data.length) { return null; }
    var ok = traces.every(function (i, j) {
      var t = fullData[i], d = data[j];
      if (!t || t.type !== "scatter" || t.visible !== true || !t._module ||
          typeof t._module.calc !== "function" || !gd.data[i] || !d) { return false; }
      var keys = Object.keys(d);
      if (!keys.length || !keys.every(function (k) { return KEYS[k]; })) { return false; }
      var n = Math.min(length(d.x !== undefined ? d.x : t.x), length(d.y !== undefined ? d.y : t.y));
      return n > 0;  // none: plotly would hide the trace (its defaults), so let it
    });
    return ok ? base : null;
  }

  function restyle(gd, traces, data) {
    var base = suited(gd, traces, data);
    if (!base) { return false; }
    try {
      draw(gd, base, traces, data);
    } catch (err) {
      return false;
    }
    return true;
  }

  function draw(gd, base, traces, data) {
    traces.forEach(function (i, j) {
      var input = gd.data[i], trace = gd._fullData[i], d = data[j];
      Object.keys(d).forEach(function (k) { input[k] = d[k]; trace[k] = d[k]; });
      trace._length = Math.min(length(trace.x), length(trace.y));
      var cd = trace._module.calc(gd, trace);  // as Plots.doCalcdata does, for this trace
      if (!Array.isArray(cd) || !cd[0]) { cd = [{x: false, y: false}]; }
      if (!cd[0].t) { cd[0].t = {}; }
      cd[0].trace = trace;
      gd.calcdata[i] = cd;
    });
    base.plot(gd, traces, {duration: 0, easing: "linear", ordering: "layout first"},
              function () { return function () {}; });
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    trajviz_direct: {restyle: restyle}
  });
}());
