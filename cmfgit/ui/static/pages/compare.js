/* Compare: #/compare/<id>,<id>,...?only=changed. The runs side by side: params and metrics
 * with deltas against the first run, changed rows highlighted (a toggle shows only those),
 * a parallel-coordinates chart and the step-metric curves overlaid. */
(function () {
  "use strict";
  var CMF = window.CMF;
  var h = CMF.h;
  var fmt = CMF.fmt;

  function render(main, arg, query, token) {
    var ids = String(arg || "")
      .split(",")
      .map(function (s) {
        return s.trim();
      })
      .filter(Boolean);
    main.appendChild(h("p", { class: "loading" }, "Loading " + ids.length + " runs…"));
    return CMF.source.get("compare", { ids: ids.join(",") }).then(function (data) {
      if (!CMF.current(token)) return;
      CMF.clear(main);
      main.appendChild(page(data, ids, query));
    });
  }

  function page(data, ids, query) {
    var runs = data.runs || [];
    var onlyChanged = query.only === "changed";
    var colours = runs.map(function (r, i) {
      return CMF.colour(null, i);
    });
    var root = h("section", { id: "compare-page" });
    root.appendChild(h("h1", null, "Compare ", h("span", { class: "sub" }, runs.length + " runs")));

    var toggle = h("input", { type: "checkbox", id: "only-changed", checked: onlyChanged });
    toggle.addEventListener("change", function () {
      CMF.go(CMF.route(["compare", ids.join(",")], toggle.checked ? { only: "changed" } : null));
    });
    root.appendChild(h("div", { class: "toolbar" }, h("label", null, toggle, " only what changed (--only-changed)")));

    var table = h("table", { id: "compare", class: "grid" });
    var head = h("tr", null, h("th", null, ""));
    runs.forEach(function (r, i) {
      head.appendChild(
        h(
          "th",
          { colspan: i === 0 ? 1 : 2, class: "run-head" + (r.status === "failed" ? " failed" : ""), "data-id": r.id },
          h("span", { class: "swatch", "data-colour": colours[i] }),
          CMF.link(["run", r.id], fmt.shortId(r.id), { title: r.id, class: "run-link" }),
          h("div", { class: "sub" }, fmt.value(r.pipeline) + " / " + fmt.value(r.stage))
        )
      );
    });
    table.appendChild(h("thead", null, head));
    var body = h("tbody");
    table.appendChild(body);

    // The runs' own fields, then params, then metrics.
    function fieldRow(label, key, values) {
      var changed = values.some(function (v) {
        return fmt.value(v) !== fmt.value(values[0]);
      });
      row(label, key, values, null, changed);
    }
    function row(label, key, values, deltas, changed, format) {
      if (onlyChanged && !changed) return;
      var tr = h("tr", { "data-key": key, class: changed ? "changed" : null }, h("th", null, label));
      values.forEach(function (v, i) {
        var text = format ? format(v) : typeof v === "number" ? fmt.number(v) : fmt.value(v);
        tr.appendChild(h("td", { class: typeof v === "number" ? "num value" : "value" }, text));
        if (i > 0) {
          var d = deltas ? deltas[i] : null;
          if (format && typeof d === "number") {
            tr.appendChild(h("td", { class: "delta" }, (d > 0 ? "+" : d < 0 ? "-" : "") + format(Math.abs(d))));
            return;
          }
          var cls = "delta";
          if (typeof d === "number" && d > 0) cls += " up";
          if (typeof d === "number" && d < 0) cls += " down";
          tr.appendChild(h("td", { class: cls }, fmt.delta(d)));
        }
      });
      body.appendChild(tr);
    }
    function section(title) {
      body.appendChild(h("tr", { class: "section" }, h("th", { colspan: 2 * runs.length }, title)));
    }

    section("run");
    fieldRow("started", "started_at", runs.map(function (r) { return fmt.time(r.started_at); }));
    fieldRow("status", "status", runs.map(function (r) { return r.status; }));
    fieldRow("site", "site", runs.map(function (r) { return r.site; }));
    fieldRow("commit", "code.commit", runs.map(function (r) { return r.code && r.code.commit ? fmt.shortId(r.code.commit) + (r.code.dirty ? " (dirty)" : "") : ""; }));
    row(
      "duration",
      "duration",
      runs.map(function (r) { return r.duration; }),
      runs.map(function (r) {
        return typeof r.duration === "number" && typeof runs[0].duration === "number" ? r.duration - runs[0].duration : null;
      }),
      false,
      fmt.duration
    );
    ["params", "metrics"].forEach(function (ns) {
      var rows = data[ns] || [];
      section(ns);
      rows.forEach(function (p) {
        row(p.key, ns + "." + p.key, p.values, p.delta, !!p.changed);
      });
      if (!rows.length) body.appendChild(h("tr", { class: "empty" }, h("td", { colspan: 2 * runs.length }, "no " + ns)));
    });
    root.appendChild(h("div", { class: "table-wrap" }, table));

    // Parallel coordinates over the params and metrics that differ (all, if none differ).
    root.appendChild(h("h2", null, "Parallel coordinates"));
    var dims = [];
    ["params", "metrics"].forEach(function (ns) {
      (data[ns] || []).forEach(function (p) {
        if (p.changed) dims.push({ key: ns + "." + p.key, label: p.key, values: p.values });
      });
    });
    var parallel = h("div", { id: "parallel" });
    parallel.setAttribute("data-dims", String(dims.length));
    if (dims.length >= 1) {
      parallel.appendChild(
        CMF.charts.parallel(
          dims,
          runs.map(function (r, i) {
            return { id: r.id, label: fmt.shortId(r.id) + " " + fmt.value(r.stage), colour: colours[i] };
          })
        )
      );
    } else {
      parallel.appendChild(h("p", { class: "empty" }, "nothing differs between these runs"));
    }
    root.appendChild(parallel);
    root.appendChild(legend(runs, colours));

    // Step curves, one chart per metric, one curve per run.
    root.appendChild(h("h2", null, "Step metrics"));
    var curves = h("div", { id: "curves" });
    var names = CMF.naturalSort(Object.keys(data.steps || {}));
    if (!names.length) curves.appendChild(h("p", { class: "empty" }, "no step metrics"));
    root.appendChild(curves);
    setTimeout(function () {
      names.forEach(function (name) {
        var byRun = data.steps[name] || {};
        var series = [];
        runs.forEach(function (r, i) {
          if (byRun[r.id]) series.push({ label: fmt.shortId(r.id), points: byRun[r.id], colour: colours[i] });
        });
        curves.appendChild(CMF.charts.steps(name, series, { legend: true }));
      });
    }, 0);
    // The swatches' colours come from a data attribute (no inline style attribute in markup).
    root.querySelectorAll(".swatch[data-colour]").forEach(function (s) {
      s.style.background = s.getAttribute("data-colour");
    });
    return root;
  }

  function legend(runs, colours) {
    var box = h("div", { class: "legend" });
    runs.forEach(function (r, i) {
      var sw = h("span", { class: "swatch" });
      sw.style.background = colours[i];
      box.appendChild(h("span", null, sw, CMF.link(["run", r.id], fmt.shortId(r.id)), " " + fmt.value(r.stage)));
    });
    return box;
  }

  CMF.pages.compare = { render: render };
})();
