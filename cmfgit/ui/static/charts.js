/* Charts: step-metric curves (uPlot, vendored) and a parallel-coordinates chart (plain SVG).
 * Labels and titles are text: uPlot draws series names on canvas or sets them with
 * textContent; the SVG's labels are text nodes. */
(function () {
  "use strict";
  var CMF = window.CMF;
  var h = CMF.h;
  var SVG = "http://www.w3.org/2000/svg";

  function num(v) {
    if (typeof v === "number" && isFinite(v)) return v;
    return null;
  }

  /* One chart of one metric over steps, with one curve per series:
   * series = [{label, points: [[step, value], ...], colour}] */
  function steps(title, series, opts) {
    opts = opts || {};
    var box = h("div", { class: "chart", "data-metric": title }, h("h3", null, title));
    var xs = {};
    series.forEach(function (s) {
      (s.points || []).forEach(function (p) {
        if (Array.isArray(p) && num(p[0]) !== null) xs[p[0]] = true;
      });
    });
    var x = Object.keys(xs)
      .map(Number)
      .sort(function (a, b) {
        return a - b;
      });
    var data = [x];
    series.forEach(function (s) {
      var at = {};
      (s.points || []).forEach(function (p) {
        if (Array.isArray(p)) at[p[0]] = num(p[1]);
      });
      data.push(
        x.map(function (step) {
          return Object.prototype.hasOwnProperty.call(at, step) ? at[step] : null;
        })
      );
    });
    box.setAttribute("data-points", String(x.length));
    if (!window.uPlot) {
      box.appendChild(h("p", { class: "empty" }, "(the chart library did not load)"));
      return box;
    }
    var plotSeries = [{ label: "step" }];
    series.forEach(function (s, i) {
      plotSeries.push({
        label: String(s.label),
        stroke: s.colour || CMF.colour(null, i),
        width: 2,
        spanGaps: true,
        points: { show: x.length <= 60 },
      });
    });
    var target = h("div", { class: "plot" });
    box.appendChild(target);
    // uPlot measures nothing itself: give it a size; it draws when attached.
    var make = function () {
      try {
        box._plot = new window.uPlot(
          {
            width: opts.width || 440,
            height: opts.height || 240,
            series: plotSeries,
            scales: { x: { time: false } },
            axes: [{ label: "step" }, {}],
            legend: { show: series.length > 1 || !!opts.legend },
          },
          data,
          target
        );
      } catch (e) {
        target.appendChild(h("p", { class: "empty" }, "cannot draw: " + e));
      }
    };
    make();
    return box;
  }

  /* Parallel coordinates: one vertical axis per dimension, one polyline per run.
   * dims = [{key, label, values: [v per run]}]; runs = [{label, colour}] */
  function parallel(dims, runs) {
    var width = Math.max(480, 130 * dims.length + 80);
    var height = 300;
    var top = 34;
    var bottom = height - 30;
    var left = 60;
    var step = dims.length > 1 ? (width - 2 * left) / (dims.length - 1) : 0;
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("width", String(width));
    svg.setAttribute("height", String(height));
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("role", "img");

    function el(name, attrs, text) {
      var e = document.createElementNS(SVG, name);
      Object.keys(attrs).forEach(function (k) {
        e.setAttribute(k, String(attrs[k]));
      });
      if (text !== undefined) e.textContent = String(text);
      svg.appendChild(e);
      return e;
    }

    // Each axis: numbers on a linear scale (min..max); other values as categories.
    var scales = dims.map(function (d) {
      var nums = d.values.map(num).filter(function (v) {
        return v !== null;
      });
      var numeric = nums.length && nums.length === d.values.filter(function (v) { return v !== null && v !== undefined; }).length;
      if (numeric) {
        var lo = Math.min.apply(null, nums);
        var hi = Math.max.apply(null, nums);
        return {
          numeric: true,
          lo: lo,
          hi: hi,
          y: function (v) {
            if (num(v) === null) return null;
            return hi === lo ? (top + bottom) / 2 : bottom - ((v - lo) / (hi - lo)) * (bottom - top);
          },
        };
      }
      var cats = [];
      d.values.forEach(function (v) {
        var t = CMF.fmt.value(v);
        if (v !== null && v !== undefined && cats.indexOf(t) < 0) cats.push(t);
      });
      cats.sort();
      return {
        numeric: false,
        cats: cats,
        y: function (v) {
          if (v === null || v === undefined) return null;
          var i = cats.indexOf(CMF.fmt.value(v));
          return cats.length === 1 ? (top + bottom) / 2 : bottom - (i / (cats.length - 1)) * (bottom - top);
        },
      };
    });

    dims.forEach(function (d, i) {
      var x = left + i * step;
      var g = el("g", { class: "axis" });
      svg.removeChild(g);
      svg.appendChild(g);
      var line = document.createElementNS(SVG, "line");
      line.setAttribute("x1", x);
      line.setAttribute("x2", x);
      line.setAttribute("y1", top);
      line.setAttribute("y2", bottom);
      g.appendChild(line);
      el("text", { x: x, y: 16, "text-anchor": "middle", class: "dim" }, d.label);
      var s = scales[i];
      if (s.numeric) {
        el("text", { x: x + 4, y: top + 4, class: "tick" }, CMF.fmt.number(s.hi));
        if (s.hi !== s.lo) el("text", { x: x + 4, y: bottom + 12, class: "tick" }, CMF.fmt.number(s.lo));
      } else {
        s.cats.forEach(function (c) {
          el("text", { x: x + 4, y: s.y(c) + 4, class: "tick" }, c.length > 18 ? c.slice(0, 17) + "…" : c);
        });
      }
    });

    runs.forEach(function (r, ri) {
      var pts = [];
      dims.forEach(function (d, i) {
        var y = scales[i].y(d.values[ri]);
        if (y !== null) pts.push(left + i * step + "," + y.toFixed(1));
      });
      var pl = el("polyline", { points: pts.join(" "), class: "line", stroke: r.colour, "data-run": r.id || ri });
      var t = document.createElementNS(SVG, "title");
      t.textContent = r.label;
      pl.appendChild(t);
    });
    return svg;
  }

  CMF.charts = { steps: steps, parallel: parallel };
})();
