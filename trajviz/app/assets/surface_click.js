// Click-to-launch anywhere on the 2D surface. The surface is drawn as an image in the layout
// plus a line trace of contour lines (so playback never redraws it), and plotly reports a click
// only near a trace's points; this reports every click inside the plot area as the graph's
// clickData {points: [{x: a, y: b}]}, the clicked point's slice coordinates, as a contour
// trace would. app/birth.py turns it into a launch.
(function () {
  var GRAPH_ID = 'surface-graph';  // trajviz.app.ids.MAIN_GRAPH
  document.addEventListener('click', function (ev) {
    var box = ev.target && ev.target.closest ? ev.target.closest('#' + GRAPH_ID) : null;
    if (!box || !window.dash_clientside || !window.dash_clientside.set_props) return;
    var gd = box.querySelector('.js-plotly-plot');
    var fl = gd && gd._fullLayout;
    if (!fl || !fl.xaxis || !fl.yaxis || fl.scene) return;  // not drawn yet, or 3D
    var xa = fl.xaxis, ya = fl.yaxis, rect = gd.getBoundingClientRect();
    var px = ev.clientX - rect.left - xa._offset, py = ev.clientY - rect.top - ya._offset;
    if (px < 0 || py < 0 || px > xa._length || py > ya._length) return;  // outside the plot
    window.dash_clientside.set_props(GRAPH_ID, {
      clickData: {points: [{x: xa.p2d(px), y: ya.p2d(py), curveNumber: 0}]}
    });
  }, true);
})();
