/* Graphs with Cytoscape.js and the dagre layered layout (both vendored): the lineage graph
 * and the pipelines' stage DAG. Labels are plain text: Cytoscape draws them on a canvas
 * (it never parses them as markup).
 *
 * CMF.graph.draw(container, elements, opts) -> the cytoscape instance; once laid out, the
 * container gets data-nodes=<count> (the tests and the static site read it). */
(function () {
  "use strict";
  var CMF = window.CMF;

  var KIND_SHAPE = { execution: "round-rectangle", artifact: "ellipse", stage: "round-rectangle" };
  var TYPE_COLOURS = {
    dataset: "#4e79a7",
    model: "#f28e2b",
    metrics: "#59a14f",
    execution: "#6b7280",
    stage: "#4e79a7",
  };

  function colourOf(kind, type) {
    if (kind === "execution") return TYPE_COLOURS.execution;
    if (kind === "stage") return TYPE_COLOURS.stage;
    return TYPE_COLOURS[type] || CMF.colour(type);
  }

  function label(text, max) {
    var s = String(text === null || text === undefined ? "" : text);
    return s.length > max ? s.slice(0, max - 1) + "…" : s;
  }

  // nodes: [{id, kind, label, type, status, ...}], edges: [{source, target, role}]
  function draw(container, nodes, edges, opts) {
    opts = opts || {};
    container.removeAttribute("data-nodes");
    var big = nodes.length > 300;
    var elements = [];
    var known = {};
    nodes.forEach(function (n) {
      known[n.id] = true;
      elements.push({
        group: "nodes",
        data: {
          id: String(n.id),
          label: label(n.label, 32),
          full: n.label === null || n.label === undefined ? "" : String(n.label),
          kind: n.kind,
          type: n.type === null || n.type === undefined ? "" : String(n.type),
          colour: colourOf(n.kind, n.type),
          failed: n.status === "failed" ? 1 : 0,
          root: opts.roots && opts.roots.indexOf(n.id) >= 0 ? 1 : 0,
        },
      });
    });
    edges.forEach(function (e, i) {
      if (!known[e.source] || !known[e.target]) return;
      elements.push({
        group: "edges",
        data: { id: "e" + i, source: String(e.source), target: String(e.target), role: e.role || "", label: e.label === undefined ? "" : String(e.label) },
      });
    });

    if (!window.cytoscape) {
      container.textContent = "(the graph library did not load)";
      return null;
    }
    var cy = window.cytoscape({
      container: container,
      elements: elements,
      minZoom: 0.02,
      maxZoom: 4,
      pixelRatio: big ? 1 : "auto",
      textureOnViewport: big,
      hideEdgesOnViewport: big,
      motionBlur: false,
      style: [
        {
          selector: "node",
          style: {
            shape: function (n) {
              return KIND_SHAPE[n.data("kind")] || "ellipse";
            },
            "background-color": "data(colour)",
            label: "data(label)",
            color: "#1d2330",
            "font-size": 11,
            "min-zoomed-font-size": 7,
            "text-valign": "bottom",
            "text-margin-y": 3,
            "text-wrap": "wrap",
            "text-max-width": "140px",
            width: function (n) {
              return n.data("kind") === "artifact" ? 18 : 34;
            },
            height: function (n) {
              return n.data("kind") === "artifact" ? 18 : 20;
            },
            "border-width": 0,
          },
        },
        { selector: "node[kind = 'stage']", style: { width: function (n) { return Math.max(60, 7.5 * String(n.data("label")).length + 24); }, height: 34, "text-valign": "center", "text-margin-y": 0, color: "#fff", "font-size": 12 } },
        { selector: "node[failed = 1]", style: { "border-width": 3, "border-color": "#c4302b" } },
        { selector: "node[root = 1]", style: { "border-width": 3, "border-color": "#111827" } },
        {
          selector: "edge",
          style: {
            width: 1.5,
            "line-color": "#b6bcc6",
            "target-arrow-color": "#b6bcc6",
            "target-arrow-shape": "triangle",
            "curve-style": big ? "haystack" : "bezier",
            "arrow-scale": 0.8,
          },
        },
        { selector: "edge[label != '']", style: { label: "data(label)", "font-size": 10, color: "#667085", "text-background-color": "#fff", "text-background-opacity": 1 } },
        { selector: "node:selected", style: { "border-width": 3, "border-color": "#2f6fdb" } },
      ],
      layout: { name: "preset" },
    });
    var started = performance.now();
    cy.one("layoutstop", function () {
      container.setAttribute("data-layout-ms", String(Math.round(performance.now() - started)));
      cy.fit(undefined, 20);
      if (cy.zoom() > 1.4) {
        cy.zoom(1.4);
        cy.center();
      }
      container.setAttribute("data-nodes", String(cy.nodes().length));
      container.setAttribute("data-edges", String(cy.edges().length));
      if (opts.onReady) opts.onReady(cy);
    });
    try {
      cy.layout({
        name: "dagre",
        rankDir: opts.rankDir || "LR",
        nodeSep: big ? 8 : 18,
        rankSep: big ? 60 : 80,
        edgeSep: 6,
        // Small graphs: room for each label (measuring a thousand labels costs more than it gives).
        nodeDimensionsIncludeLabels: !big,
        animate: false,
        fit: true,
        padding: 20,
      }).run();
    } catch (e) {
      // No dagre (or a layout that fails): a layered breadth-first layout still reads.
      if (typeof console !== "undefined") console.error(e);
      cy.layout({ name: "breadthfirst", directed: true, animate: false }).run();
    }
    if (opts.onTap) {
      cy.on("tap", "node", function (ev) {
        opts.onTap(ev.target.data(), ev.target);
      });
    }
    return cy;
  }

  // A legend of the node colours in use: kind and type as text.
  function legend(nodes) {
    var h = CMF.h;
    var seen = {};
    var box = h("div", { class: "legend", id: "graph-legend" });
    nodes.forEach(function (n) {
      var key = n.kind === "artifact" ? "artifact: " + (n.type || "?") : n.kind;
      if (seen[key]) return;
      seen[key] = true;
      var sw = h("span", { class: "swatch" + (n.kind === "artifact" ? " round" : "") });
      sw.style.background = colourOf(n.kind, n.type);
      box.appendChild(h("span", null, sw, key));
    });
    return box;
  }

  CMF.graph = { draw: draw, legend: legend, colourOf: colourOf };
})();
