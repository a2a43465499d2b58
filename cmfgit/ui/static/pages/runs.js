/* Runs: one row per execution, --where search (its error with a caret), click-to-sort
 * headers, chosen param/metric columns, paging, and a pick of runs to compare.
 * Route: #/runs?where=..&sort=..&offset=..&params=a,b&metrics=c,d */
(function () {
  "use strict";
  var CMF = window.CMF;
  var h = CMF.h;
  var fmt = CMF.fmt;
  var LIMIT = 50;
  var picked = []; // ids picked for Compare, kept across pages and searches

  function render(main, arg, query, token) {
    var state = {
      where: query.where || "",
      sort: query.sort || "",
      offset: Math.max(0, parseInt(query.offset, 10) || 0),
      limit: Math.min(1000, Math.max(1, parseInt(query.limit, 10) || LIMIT)),
      params: query.params,
      metrics: query.metrics,
    };

    var input = h("input", {
      id: "where",
      type: "search",
      placeholder: "--where, e.g. params.lr >= 0.01 and metrics.acc > 0.9",
      spellcheck: "false",
      autocomplete: "off",
      value: state.where,
    });
    input.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") {
        ev.preventDefault();
        go({ where: input.value.trim(), offset: 0 });
      }
    });
    var searchBtn = h("button", { id: "search", type: "button" }, "Search");
    searchBtn.addEventListener("click", function () {
      go({ where: input.value.trim(), offset: 0 });
    });
    var errorSlot = h("div", { id: "where-error-slot" });
    var total = h("span", { id: "runs-total" });
    var compareBtn = h("button", { id: "compare", type: "button", disabled: true }, "Compare");
    compareBtn.addEventListener("click", function () {
      if (picked.length >= 2) CMF.go(CMF.route(["compare", picked.join(",")]));
    });
    var clearBtn = h("button", { id: "clear-picks", type: "button" }, "Clear picks");
    clearBtn.addEventListener("click", function () {
      picked = [];
      document.querySelectorAll("input.pick").forEach(function (c) {
        c.checked = false;
      });
      updatePicks();
    });
    var pickInfo = h("span", { id: "pick-info" });
    var chooserSlot = h("div", { id: "columns-slot" });
    var tableSlot = h("div", { class: "table-wrap" });
    var prev = h("button", { id: "prev", type: "button", disabled: true }, "‹ Prev");
    var next = h("button", { id: "next", type: "button", disabled: true }, "Next ›");
    var pageInfo = h("span", { id: "page-info" });

    main.appendChild(
      h(
        "section",
        { id: "runs-page" },
        h("h1", null, "Runs"),
        h("div", { class: "search" }, input, searchBtn),
        help(),
        errorSlot,
        h("div", { class: "toolbar" }, total, chooserSlot, h("span", { class: "spacer" }), pickInfo, clearBtn, compareBtn),
        tableSlot,
        h("div", { class: "pager" }, prev, pageInfo, next)
      )
    );
    updatePicks();

    function go(change) {
      var q = {
        where: state.where,
        sort: state.sort,
        offset: state.offset,
        params: state.params,
        metrics: state.metrics,
      };
      if (state.limit !== LIMIT) q.limit = state.limit;
      Object.assign(q, change);
      if (!q.offset) delete q.offset;
      CMF.go(CMF.route(["runs"], q));
    }

    function updatePicks() {
      compareBtn.disabled = picked.length < 2;
      pickInfo.textContent = picked.length ? picked.length + " picked" : "";
      clearBtn.hidden = !picked.length;
    }

    var params = {
      where: state.where,
      sort: state.sort,
      offset: state.offset,
      limit: state.limit,
    };
    if (state.params !== undefined) params.params = state.params;
    if (state.metrics !== undefined) params.metrics = state.metrics;

    return CMF.source.get("runs", params).then(
      function (data) {
        if (!CMF.current(token)) return;
        total.textContent = fmt.count(data.total) + (data.total === 1 ? " run" : " runs") + (state.where ? " match" : "");
        chooserSlot.appendChild(chooser(data, go));
        tableSlot.appendChild(table(data, state, go, updatePicks));
        var first = data.rows.length ? data.offset + 1 : 0;
        var last = data.offset + data.rows.length;
        pageInfo.textContent = fmt.count(first) + "–" + fmt.count(last) + " of " + fmt.count(data.total);
        prev.disabled = data.offset <= 0;
        next.disabled = last >= data.total;
        prev.addEventListener("click", function () {
          go({ offset: Math.max(0, data.offset - state.limit) });
        });
        next.addEventListener("click", function () {
          go({ offset: data.offset + state.limit });
        });
      },
      function (err) {
        if (!CMF.current(token)) return;
        errorSlot.appendChild(CMF.errorBox(err, "where-error"));
        total.textContent = "";
        pageInfo.textContent = "";
        prev.hidden = next.hidden = true;
      }
    );
  }

  // The --where language in brief (docs/json.md, "--where and --sort", has it all).
  function help() {
    var d = h("details", { class: "where-help" }, h("summary", null, "--where syntax"));
    d.appendChild(
      h(
        "p",
        null,
        "Comparisons ",
        h("code", null, "== != < <= > >="),
        ", ",
        h("code", null, "in (…)"),
        ", globs ",
        h("code", null, '~ "train*"'),
        ", joined with ",
        h("code", null, "and or not"),
        " and parentheses, over ",
        h("code", null, "params.KEY metrics.KEY tags.KEY pipeline stage type site host user exit_code started_at ended_at duration id commit branch"),
        ". Example: ",
        h("code", null, 'stage == "train" and params.lr >= 0.01 and metrics.acc > 0.9')
      )
    );
    return d;
  }

  // The column chooser: a checkbox per param and metric key (keys in natural order).
  function chooser(data, go) {
    var details = h("details", { id: "columns", class: "chooser" });
    details.appendChild(h("summary", null, "Columns"));
    var lists = {};
    ["params", "metrics"].forEach(function (ns) {
      var chosen = data.columns[ns] || [];
      var box = h("fieldset", { class: "keys" }, h("legend", null, ns));
      lists[ns] = [];
      (data.keys[ns] || []).forEach(function (key) {
        var cb = h("input", { type: "checkbox", class: "col", "data-ns": ns, value: key, checked: chosen.indexOf(key) >= 0 });
        lists[ns].push(cb);
        box.appendChild(h("label", null, cb, " ", key));
      });
      if (!(data.keys[ns] || []).length) box.appendChild(h("span", { class: "empty" }, "none recorded"));
      details.appendChild(box);
    });
    var apply = h("button", { id: "apply-columns", type: "button" }, "Apply");
    apply.addEventListener("click", function () {
      var change = {};
      ["params", "metrics"].forEach(function (ns) {
        change[ns] = lists[ns]
          .filter(function (cb) {
            return cb.checked;
          })
          .map(function (cb) {
            return cb.value;
          })
          .join(",");
        // An empty choice is a choice ("no columns"), not the default: keep the key present.
        if (!change[ns]) change[ns] = ",";
      });
      go(change);
    });
    details.appendChild(apply);
    return details;
  }

  function table(data, state, go, updatePicks) {
    var params = data.columns.params || [];
    var metrics = data.columns.metrics || [];
    var cols = [
      { label: "", cls: "pick-col" },
      { label: "id", cls: "id", sort: "id" },
      { label: "pipeline", sort: "pipeline" },
      { label: "stage", sort: "stage" },
      { label: "started", sort: "started_at" },
      { label: "duration", cls: "num", sort: "duration" },
      { label: "status", sort: "exit_code" },
      { label: "site", sort: "site" },
    ];
    params.forEach(function (k) {
      cols.push({ label: k, sort: "params." + k, cls: "num param", group: "params" });
    });
    metrics.forEach(function (k) {
      cols.push({ label: k, sort: "metrics." + k, cls: "num metric", group: "metrics" });
    });

    // No sort given: the server's default, newest first.
    var sort = state.sort || "-started_at";
    var current = sort.replace(/^[+-]/, "");
    if (current === "time") current = "started_at";
    var descending = sort.charAt(0) === "-";
    var headRow = h("tr");
    cols.forEach(function (c) {
      var th = h("th", { class: c.cls || null, title: c.group ? c.group + "." + c.label : null }, c.label);
      if (c.sort) {
        th.setAttribute("data-sort", c.sort);
        th.classList.add("sortable");
        if (c.sort === current) {
          th.classList.add(descending ? "desc" : "asc");
          th.setAttribute("aria-sort", descending ? "descending" : "ascending");
        }
        th.setAttribute("tabindex", "0");
        th.setAttribute("title", "sort by " + c.sort + " (again: descending)");
        var sortBy = function () {
          // First click: ascending; again: descending.
          go({ sort: c.sort === current && !descending ? "-" + c.sort : c.sort, offset: 0 });
        };
        th.addEventListener("click", sortBy);
        th.addEventListener("keydown", function (ev) {
          if (ev.key === "Enter" || ev.key === " ") {
            ev.preventDefault();
            sortBy();
          }
        });
      }
      headRow.appendChild(th);
    });
    var thead = h("thead");
    if (params.length || metrics.length) {
      // A group row over the param and metric columns.
      var groups = h("tr", { class: "groups" }, h("th", { colspan: 8 }));
      if (params.length) groups.appendChild(h("th", { colspan: params.length, class: "group" }, "params"));
      if (metrics.length) groups.appendChild(h("th", { colspan: metrics.length, class: "group" }, "metrics"));
      thead.appendChild(groups);
    }
    thead.appendChild(headRow);

    var body = h("tbody");
    data.rows.forEach(function (row) {
      var cb = h("input", { type: "checkbox", class: "pick", value: row.id, checked: picked.indexOf(row.id) >= 0, title: "pick to compare" });
      cb.addEventListener("change", function () {
        var i = picked.indexOf(row.id);
        if (cb.checked && i < 0) picked.push(row.id);
        if (!cb.checked && i >= 0) picked.splice(i, 1);
        updatePicks();
      });
      var tr = h(
        "tr",
        { class: "run status-" + String(row.status), "data-id": row.id },
        h("td", { class: "pick-col" }, cb),
        h("td", { class: "id" }, CMF.link(["run", row.id], fmt.shortId(row.id), { class: "run-link", title: row.id })),
        h("td", { class: "pipeline", title: fmt.value(row.pipeline) }, fmt.value(row.pipeline)),
        h("td", { class: "stage", title: fmt.value(row.stage) }, fmt.value(row.stage)),
        h("td", { class: "time", title: fmt.value(row.started_at) }, fmt.time(row.started_at)),
        h("td", { class: "num" }, fmt.duration(row.duration)),
        h(
          "td",
          { class: "status" },
          h("span", { class: "badge " + String(row.status) }, row.status === "failed" ? "failed (" + fmt.value(row.exit_code) + ")" : fmt.value(row.status))
        ),
        h("td", { class: "site" }, fmt.value(row.site))
      );
      if (row.status === "failed") tr.classList.add("failed");
      params.forEach(function (k) {
        tr.appendChild(cell(row.params, k, "param"));
      });
      metrics.forEach(function (k) {
        tr.appendChild(cell(row.metrics, k, "metric"));
      });
      body.appendChild(tr);
    });
    var tbl = h("table", { id: "runs", class: "grid" }, thead, body);
    if (!data.rows.length) {
      return h("div", null, tbl, h("p", { class: "empty" }, state.where ? "No run matches." : "No runs recorded yet."));
    }
    return tbl;
  }

  function cell(obj, key, cls) {
    var has = obj && Object.prototype.hasOwnProperty.call(obj, key);
    var v = has ? obj[key] : null;
    var text = typeof v === "number" ? fmt.number(v) : fmt.value(v);
    return h("td", { class: (typeof v === "number" ? "num " : "") + cls, "data-key": key, title: text.length > 20 ? text : null }, text);
  }

  CMF.pages.runs = { render: render };
})();
