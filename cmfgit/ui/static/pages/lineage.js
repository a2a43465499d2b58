/* Lineage: #/lineage/<target>?dir=up|down|both&depth=N. The graph of executions and
 * artifacts around a target (a run id, an artifact hash or a path, as `cmfgit lineage`
 * takes it), laid out in layers by dagre. Clicking a node opens its page. */
(function () {
  "use strict";
  var CMF = window.CMF;
  var h = CMF.h;
  var fmt = CMF.fmt;

  function render(main, target, query, token) {
    var dir = ["up", "down", "both"].indexOf(query.dir) >= 0 ? query.dir : "both";
    var depth = /^\d+$/.test(query.depth || "") ? query.depth : "";

    var targetInput = h("input", { id: "target", type: "text", value: target, placeholder: "run id, artifact hash or path", spellcheck: "false" });
    var dirSelect = h(
      "select",
      { id: "dir" },
      ["up", "down", "both"].map(function (d) {
        return h("option", { value: d, selected: d === dir }, d === "up" ? "up (where it came from)" : d === "down" ? "down (what came of it)" : "both");
      })
    );
    var depthInput = h("input", { id: "depth", type: "number", min: "0", step: "1", value: depth, placeholder: "all", title: "execution hops from the target (empty: all)" });
    function apply() {
      var t = targetInput.value.trim();
      if (!t) return;
      CMF.go(CMF.route(["lineage", t], { dir: dirSelect.value, depth: depthInput.value.trim() }));
    }
    dirSelect.addEventListener("change", apply);
    depthInput.addEventListener("change", apply);
    [targetInput, depthInput].forEach(function (el) {
      el.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter") apply();
      });
    });
    var status = h("span", { id: "graph-status", class: "graph-note" });
    var fit = h("button", { id: "fit", type: "button", title: "show the whole graph" }, "Fit");
    fit.addEventListener("click", function () {
      if (window.cmfgitGraph) window.cmfgitGraph.fit(undefined, 20);
    });
    var graph = h("div", { id: "graph" });
    var legendSlot = h("div");
    var selected = h("div", { id: "graph-selected", class: "meta" });
    main.appendChild(
      h(
        "section",
        { id: "lineage-page" },
        h("h1", null, "Lineage"),
        h(
          "div",
          { class: "graph-controls" },
          h("label", null, "target ", targetInput),
          h("label", null, "direction ", dirSelect),
          h("label", null, "depth ", depthInput),
          fit,
          status
        ),
        legendSlot,
        graph,
        h("p", { class: "graph-note" }, "Click a node to open its page; scroll to zoom, drag to pan; hover for details."),
        selected
      )
    );
    if (!target) {
      status.textContent = "Name a run, an artifact hash or a path.";
      return null;
    }
    status.textContent = "Loading…";
    var params = { target: target, dir: dir };
    if (depth !== "") params.depth = depth;
    return CMF.source.get("lineage", params).then(function (data) {
      if (!CMF.current(token)) return;
      var nodes = data.nodes || [];
      var edges = data.edges || [];
      var execs = nodes.filter(function (n) {
        return n.kind === "execution";
      }).length;
      status.textContent =
        fmt.count(nodes.length) + " nodes (" + fmt.count(execs) + " runs, " + fmt.count(nodes.length - execs) + " artifacts), " + fmt.count(edges.length) + " edges" + (data.truncated ? " — cut short: too many to draw; lower the depth" : "");
      if (data.truncated) status.classList.add("truncated");
      legendSlot.appendChild(CMF.graph.legend(nodes));
      var byId = {};
      nodes.forEach(function (n) {
        byId[n.id] = n;
      });
      var cy = CMF.graph.draw(graph, nodes.map(function (n) {
        return {
          id: n.id,
          kind: n.kind,
          label: n.kind === "execution" ? fmt.value(n.stage) + " " + fmt.shortId(n.id).slice(0, 7) : fmt.value(n.label || n.path || fmt.shortId(n.id)),
          type: n.type,
          status: n.status,
        };
      }), edges, {
        roots: data.roots || [],
        onTap: function (d) {
          var n = byId[d.id];
          if (!n) return;
          CMF.go(n.kind === "execution" ? CMF.route(["run", n.id]) : CMF.route(["artifact", n.id]));
        },
      });
      window.cmfgitGraph = cy;
      if (cy) {
        cy.on("mouseover", "node", function (ev) {
          var n = byId[ev.target.id()];
          if (!n) return;
          CMF.clear(selected);
          if (n.kind === "execution") {
            selected.appendChild(h("span", null, "run: ", h("b", null, fmt.value(n.pipeline) + " / " + fmt.value(n.stage))));
            selected.appendChild(h("span", null, "status: ", h("b", null, fmt.value(n.status))));
            selected.appendChild(h("span", { class: "mono" }, n.id));
          } else {
            selected.appendChild(h("span", null, "artifact: ", h("b", null, fmt.value(n.path))));
            selected.appendChild(h("span", null, "type: ", h("b", null, fmt.value(n.type))));
            selected.appendChild(h("span", { class: "mono" }, n.id));
          }
        });
        CMF.onLeave = function () {
          if (window.cmfgitGraph === cy) window.cmfgitGraph = null;
          cy.destroy();
        };
      }
    });
  }

  CMF.pages.lineage = { render: render };
})();
