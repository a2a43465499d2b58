/* Pipelines: #/pipelines. Each pipeline's stage-level DAG (derived from the recorded
 * lineage: stage A -> stage B when B read what A wrote), with its runs per stage. */
(function () {
  "use strict";
  var CMF = window.CMF;
  var h = CMF.h;
  var fmt = CMF.fmt;

  function render(main, arg, query, token) {
    var select = h("select", { id: "pipeline" });
    var graph = h("div", { id: "pipeline-graph" });
    var tableSlot = h("div", { class: "table-wrap" });
    var note = h("p", { class: "graph-note", id: "pipeline-note" });
    main.appendChild(
      h(
        "section",
        { id: "pipelines-page" },
        h("h1", null, "Pipelines"),
        h("div", { class: "graph-controls" }, h("label", null, "pipeline ", select), note),
        graph,
        h("h2", null, "Stages"),
        tableSlot
      )
    );
    return CMF.source.get("pipelines", {}).then(function (data) {
      if (!CMF.current(token)) return;
      var list = data.pipelines || [];
      if (!list.length) {
        note.textContent = "No runs recorded yet.";
        return;
      }
      var chosen = list.filter(function (p) {
        return p.name === query.name;
      })[0];
      if (!chosen) {
        // The pipeline with the most runs first.
        chosen = list.slice().sort(function (a, b) {
          return (b.runs || 0) - (a.runs || 0);
        })[0];
      }
      list.forEach(function (p) {
        select.appendChild(h("option", { value: p.name, selected: p === chosen }, p.name + " (" + fmt.count(p.runs) + " runs)"));
      });
      select.addEventListener("change", function () {
        CMF.go(CMF.route(["pipelines"], { name: select.value }));
      });
      tableSlot.appendChild(stagesTable(list));
      draw(graph, chosen, note);
    });
  }

  function draw(container, p, note) {
    var stages = p.stages || [];
    var nodes = stages.map(function (s) {
      return {
        id: "stage:" + s.name,
        kind: "stage",
        label: s.name + " (" + s.runs + (s.failed ? ", " + s.failed + " failed" : "") + ")",
        type: "stage",
        status: s.failed ? "failed" : "ok",
      };
    });
    var edges = (p.edges || []).map(function (e) {
      return { source: "stage:" + e.from, target: "stage:" + e.to, role: "data" };
    });
    note.textContent = stages.length + (stages.length === 1 ? " stage, " : " stages, ") + edges.length + (edges.length === 1 ? " edge" : " edges") + (edges.length ? "" : " (no stage read what another wrote)");
    var cy = CMF.graph.draw(container, nodes, edges, {
      rankDir: "LR",
      onTap: function (d) {
        var stage = d.id.slice("stage:".length);
        CMF.go(CMF.route(["runs"], { where: "pipeline == " + JSON.stringify(p.name) + " and stage == " + JSON.stringify(stage) }));
      },
    });
    window.cmfgitPipelineGraph = cy;
    if (cy) {
      CMF.onLeave = function () {
        window.cmfgitPipelineGraph = null;
        cy.destroy();
      };
    }
  }

  function stagesTable(list) {
    var table = h(
      "table",
      { id: "stages", class: "grid" },
      h(
        "thead",
        null,
        h("tr", null, h("th", null, "pipeline"), h("th", null, "stage"), h("th", { class: "num" }, "runs"), h("th", { class: "num" }, "failed"), h("th", null, "last run"))
      )
    );
    var body = h("tbody");
    list.forEach(function (p) {
      (p.stages || []).forEach(function (s) {
        var where = "pipeline == " + JSON.stringify(p.name) + " and stage == " + JSON.stringify(s.name);
        var a = h("a", { href: CMF.route(["runs"], { where: where }), class: "stage-runs" }, fmt.count(s.runs));
        body.appendChild(
          h(
            "tr",
            { class: "stage" + (s.failed ? " failed" : ""), "data-pipeline": p.name, "data-stage": s.name },
            h("td", null, fmt.value(p.name)),
            h("td", { class: "stage-name" }, fmt.value(s.name)),
            h("td", { class: "num" }, a),
            h("td", { class: "num" }, fmt.count(s.failed || 0)),
            h("td", { class: "time" }, fmt.time(s.last))
          )
        );
      });
    });
    table.appendChild(body);
    return table;
  }

  CMF.pages.pipelines = { render: render };
})();
