/* A run: #/run/<id>. Params, metrics, step-metric charts, inputs and outputs (linked to
 * their artifact pages), the code version (linked to the commit page when the remote is a
 * known forge), the command line, environment, site, host, exit code and tags. */
(function () {
  "use strict";
  var CMF = window.CMF;
  var h = CMF.h;
  var fmt = CMF.fmt;

  function render(main, id, query, token) {
    main.appendChild(h("p", { class: "loading" }, "Loading run…"));
    return CMF.source.get("run", { id: id }).then(function (data) {
      if (!CMF.current(token)) return;
      CMF.clear(main);
      main.appendChild(page(data));
    });
  }

  function page(data) {
    var run = data.run || {};
    var failed = typeof run.exit_code === "number" && run.exit_code !== 0;
    var status = failed ? "failed" : run.exit_code === null && !run.ended_at ? "running" : "ok";
    var root = h("section", { id: "run", "data-id": run.id, class: failed ? "failed" : null });

    root.appendChild(
      h(
        "h1",
        null,
        h("span", { class: "pipeline" }, fmt.value(run.pipeline)),
        " / ",
        h("span", { class: "stage" }, fmt.value(run.stage)),
        " ",
        h("span", { class: "badge " + status, id: "status" }, failed ? "failed (exit " + run.exit_code + ")" : status),
        h("span", { class: "sub mono", title: run.id }, fmt.shortId(run.id))
      )
    );

    var duration = null;
    if (run.started_at && run.ended_at) {
      duration = (Date.parse(run.ended_at) - Date.parse(run.started_at)) / 1000;
    }
    root.appendChild(
      h(
        "div",
        { class: "meta", id: "summary" },
        item("started", fmt.time(run.started_at)),
        item("duration", fmt.duration(duration)),
        item("site", run.site, "site"),
        item("host", run.host, "host"),
        item("user", run.user),
        item("exit code", run.exit_code === null || run.exit_code === undefined ? "none" : run.exit_code, "exit-code"),
        item("type", run.type)
      )
    );
    if (run.error) root.appendChild(h("div", { class: "error", id: "run-error" }, fmt.value(run.error)));

    var lineage = CMF.link(["lineage", run.id], "Lineage of this run", { id: "lineage-link" });
    var links = h("div", { class: "links" }, lineage);
    var cmp = CMF.link(["runs"], "Runs of this stage", { id: "stage-runs" });
    cmp.href = CMF.route(["runs"], { where: "pipeline == " + JSON.stringify(String(run.pipeline)) + " and stage == " + JSON.stringify(String(run.stage)) });
    links.appendChild(cmp);
    root.appendChild(links);

    var cards = h("div", { class: "cards" });
    cards.appendChild(h("div", { class: "card" }, h("h2", null, "Params"), CMF.kvTable("params", run.params, "no params")));
    cards.appendChild(h("div", { class: "card" }, h("h2", null, "Metrics"), CMF.kvTable("metrics", run.metrics, "no metrics")));
    root.appendChild(cards);

    root.appendChild(h("h2", null, "Step metrics"));
    var steps = h("div", { id: "steps" });
    var names = CMF.naturalSort(Object.keys(data.steps || {}));
    if (!names.length) steps.appendChild(h("p", { class: "empty" }, "no step metrics"));
    root.appendChild(steps);
    // Charts are drawn once the section is in the page (uPlot measures nothing, but
    // keeping the page's first paint free of canvas work is cheap).
    setTimeout(function () {
      names.forEach(function (name) {
        steps.appendChild(CMF.charts.steps(name, [{ label: name, points: data.steps[name] }]));
      });
    }, 0);

    root.appendChild(h("h2", null, "Inputs"));
    root.appendChild(artifacts("inputs", run.inputs));
    root.appendChild(h("h2", null, "Outputs"));
    root.appendChild(artifacts("outputs", run.outputs));

    root.appendChild(h("h2", null, "Code"));
    root.appendChild(code(run.git || {}, data.code_url));

    root.appendChild(h("h2", null, "Command"));
    var argv = Array.isArray(run.command) ? run.command.map(quote).join(" ") : fmt.value(run.command);
    root.appendChild(h("pre", { class: "command", id: "command" }, argv));
    if (run.cwd) root.appendChild(h("div", { class: "meta" }, item("working directory", run.cwd)));

    var lower = h("div", { class: "cards" });
    lower.appendChild(h("div", { class: "card" }, h("h2", null, "Environment"), CMF.kvTable("env", envRows(run.env), "not recorded")));
    lower.appendChild(h("div", { class: "card" }, h("h2", null, "Tags"), CMF.kvTable("tags", run.tags, "no tags")));
    root.appendChild(lower);

    if (run.properties && typeof run.properties === "object" && Object.keys(run.properties).length) {
      root.appendChild(h("h2", null, "Properties"));
      root.appendChild(CMF.kvTable("properties", run.properties));
    }
    var mc = run.metadata_commit;
    root.appendChild(
      h(
        "div",
        { class: "meta", id: "record" },
        item("record", run.id),
        item("uuid", run.uuid),
        item("metadata commit", mc ? (mc.commit ? fmt.shortId(mc.commit) : mc.pending ? "pending" : "none") : "")
      )
    );
    return root;
  }

  function item(label, v, id) {
    if (v === null || v === undefined || v === "") return null;
    return h("span", { id: id || null }, label + ": ", h("b", null, fmt.value(v)));
  }

  function quote(arg) {
    var s = String(arg);
    return /^[\w@%+=:,./-]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'";
  }

  function envRows(env) {
    var out = {};
    Object.keys(env || {}).forEach(function (k) {
      var v = env[k];
      if (k === "vars" && v && typeof v === "object") {
        Object.keys(v).forEach(function (name) {
          out["$" + name] = v[name];
        });
      } else {
        out[k] = v;
      }
    });
    return out;
  }

  function artifacts(id, list) {
    list = Array.isArray(list) ? list : [];
    var table = h(
      "table",
      { id: id, class: "grid" },
      h("thead", null, h("tr", null, h("th", null, "path"), h("th", null, "type"), h("th", { class: "num" }, "size"), h("th", null, "hash")))
    );
    var body = h("tbody");
    list.forEach(function (a) {
      body.appendChild(
        h(
          "tr",
          { "data-hash": a.hash },
          h("td", null, CMF.link(["artifact", a.hash], fmt.value(a.path), { class: "artifact" })),
          h("td", null, fmt.value(a.type)),
          h("td", { class: "num", title: a.size === null || a.size === undefined ? null : a.size + " bytes" }, fmt.size(a.size)),
          h("td", { class: "hash", title: a.hash }, CMF.link(["artifact", a.hash], fmt.shortId(a.hash), { class: "artifact hash" }))
        )
      );
    });
    table.appendChild(body);
    if (!list.length) return h("div", null, table, h("p", { class: "empty" }, "none"));
    return table;
  }

  function code(git, url) {
    var box = h("div", { id: "code", class: "meta" });
    var commit = git.commit;
    if (commit) {
      var c = url && /^https?:\/\//i.test(url) ? h("a", { class: "commit", href: url, target: "_blank", rel: "noopener noreferrer" }, commit) : h("span", { class: "commit mono" }, commit);
      box.appendChild(h("span", null, "commit: ", c));
    } else {
      box.appendChild(h("span", null, "commit: ", h("b", null, "none (not a git checkout)")));
    }
    CMF.append(box, item("branch", git.branch, "branch"));
    box.appendChild(h("span", { id: "dirty" }, "dirty: ", h("b", { class: git.dirty ? "bad" : null }, git.dirty ? "yes" : "no")));
    CMF.append(box, item("tree", git.tree, "tree"));
    CMF.append(box, item("remote", git.remote, "remote"));
    return box;
  }

  CMF.pages.run = { render: render };
})();
