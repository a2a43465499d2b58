/* Artifacts: #/artifacts?type=&path=&offset= (the list, filtered by type or path) and
 * #/artifact/<hash> (one artifact: every version recorded at its path, and where this
 * version was used). */
(function () {
  "use strict";
  var CMF = window.CMF;
  var h = CMF.h;
  var fmt = CMF.fmt;
  var LIMIT = 50;

  function list(main, arg, query, token) {
    var type = query.type || "";
    var path = query.path || "";
    var offset = Math.max(0, parseInt(query.offset, 10) || 0);
    var select = h("select", { id: "type" }, h("option", { value: "" }, "all types"));
    var pathInput = h("input", { id: "path", type: "search", value: path, placeholder: "part of a path", spellcheck: "false" });
    var total = h("span", { id: "artifacts-total" });
    var slot = h("div", { class: "table-wrap" });
    var prev = h("button", { id: "prev", type: "button", disabled: true }, "‹ Prev");
    var next = h("button", { id: "next", type: "button", disabled: true }, "Next ›");
    var pageInfo = h("span", { id: "page-info" });
    function go(change) {
      var q = Object.assign({ type: select.value, path: pathInput.value.trim(), offset: 0 }, change || {});
      if (!q.offset) delete q.offset;
      CMF.go(CMF.route(["artifacts"], q));
    }
    select.addEventListener("change", function () {
      go();
    });
    pathInput.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") go();
    });
    main.appendChild(
      h(
        "section",
        { id: "artifacts-page" },
        h("h1", null, "Artifacts"),
        h("div", { class: "toolbar" }, h("label", null, "type ", select), h("label", null, "path ", pathInput), total),
        slot,
        h("div", { class: "pager" }, prev, pageInfo, next)
      )
    );
    return CMF.source.get("artifacts", { type: type, path: path, offset: offset, limit: LIMIT }).then(function (data) {
      if (!CMF.current(token)) return;
      (data.types || []).forEach(function (t) {
        select.appendChild(h("option", { value: t, selected: t === type }, t));
      });
      if (type && (data.types || []).indexOf(type) < 0) select.appendChild(h("option", { value: type, selected: true }, type));
      total.textContent = fmt.count(data.total) + (data.total === 1 ? " artifact" : " artifacts");
      var table = h(
        "table",
        { id: "artifacts", class: "grid" },
        h(
          "thead",
          null,
          h("tr", null, h("th", null, "path"), h("th", null, "type"), h("th", { class: "num" }, "size"), h("th", null, "hash"), h("th", null, "last used"), h("th", { class: "num" }, "uses"))
        )
      );
      var body = h("tbody");
      (data.rows || []).forEach(function (a) {
        var paths = Array.isArray(a.paths) && a.paths.length > 1 ? " (+" + (a.paths.length - 1) + " more paths)" : "";
        body.appendChild(
          h(
            "tr",
            { class: "artifact", "data-hash": a.hash },
            h("td", null, CMF.link(["artifact", a.hash], fmt.value(a.path), { class: "artifact" }), h("span", { class: "sub" }, paths)),
            h("td", { class: "type" }, fmt.value(a.type)),
            h("td", { class: "num" }, fmt.size(a.size)),
            h("td", { class: "hash", title: a.hash }, fmt.shortId(a.hash)),
            h("td", { class: "time" }, fmt.time(a.last_used)),
            h("td", { class: "num" }, fmt.value(a.uses))
          )
        );
      });
      table.appendChild(body);
      slot.appendChild(table);
      if (!(data.rows || []).length) slot.appendChild(h("p", { class: "empty" }, "No artifacts."));
      var shown = (data.rows || []).length;
      var off = typeof data.offset === "number" ? data.offset : offset;
      pageInfo.textContent = (shown ? fmt.count(off + 1) : "0") + "–" + fmt.count(off + shown) + " of " + fmt.count(data.total);
      prev.disabled = off <= 0;
      next.disabled = off + shown >= data.total;
      prev.addEventListener("click", function () {
        go({ type: type, path: path, offset: Math.max(0, off - LIMIT) });
      });
      next.addEventListener("click", function () {
        go({ type: type, path: path, offset: off + LIMIT });
      });
    });
  }

  function one(main, hash, query, token) {
    main.appendChild(h("p", { class: "loading" }, "Loading artifact…"));
    return CMF.source.get("artifact", { hash: hash }).then(function (data) {
      if (!CMF.current(token)) return;
      CMF.clear(main);
      var a = data.artifact || {};
      var root = h("section", { id: "artifact", "data-hash": a.hash });
      root.appendChild(h("h1", null, fmt.value(a.path), h("span", { class: "sub" }, fmt.value(a.type))));
      root.appendChild(
        h(
          "div",
          { class: "meta" },
          h("span", null, "hash: ", h("b", { class: "mono" }, fmt.value(a.hash))),
          h("span", null, "size: ", h("b", null, fmt.size(a.size))),
          Array.isArray(a.aliases) && a.aliases.length ? h("span", null, "aliases: ", h("b", { class: "mono" }, a.aliases.join(", "))) : null
        )
      );
      if (Array.isArray(a.paths) && a.paths.length > 1) root.appendChild(h("div", { class: "meta" }, "recorded at: ", h("b", null, a.paths.join(", "))));
      root.appendChild(h("div", { class: "links" }, CMF.link(["lineage", a.hash], "Lineage of this version", { id: "lineage-link" })));
      if (a.tags && Object.keys(a.tags).length) {
        root.appendChild(h("h2", null, "Tags"));
        root.appendChild(CMF.kvTable("tags", a.tags));
      }

      root.appendChild(h("h2", null, "Versions of this path"));
      var versions = h(
        "table",
        { id: "versions", class: "grid" },
        h("thead", null, h("tr", null, h("th", null, "hash"), h("th", null, "path"), h("th", { class: "num" }, "size"), h("th", null, "first seen"), h("th", null, "produced by")))
      );
      var vb = h("tbody");
      (data.versions || []).forEach(function (v) {
        var current = v.hash === a.hash;
        vb.appendChild(
          h(
            "tr",
            { class: "version" + (current ? " current" : ""), "data-hash": v.hash },
            h("td", { class: "hash" }, current ? h("b", { title: v.hash }, fmt.shortId(v.hash) + " (this)") : CMF.link(["artifact", v.hash], fmt.shortId(v.hash), { title: v.hash })),
            h("td", null, fmt.value(v.path === undefined ? a.path : v.path)),
            h("td", { class: "num" }, fmt.size(v.size)),
            h("td", { class: "time" }, fmt.time(v.first_seen)),
            h("td", null, v.produced_by ? CMF.link(["run", v.produced_by], fmt.shortId(v.produced_by), { class: "run-link" }) : "—")
          )
        );
      });
      versions.appendChild(vb);
      root.appendChild(versions);
      CMF.append(root, more("versions-more", (data.versions || []).length, data.versions_total, "versions"));

      root.appendChild(h("h2", null, "Where this version was used"));
      var used = h(
        "table",
        { id: "used", class: "grid" },
        h("thead", null, h("tr", null, h("th", null, "run"), h("th", null, "pipeline"), h("th", null, "stage"), h("th", null, "role"), h("th", null, "started"), h("th", null, "status")))
      );
      var ub = h("tbody");
      (data.used_by || []).forEach(function (u) {
        ub.appendChild(
          h(
            "tr",
            { class: "use" + (u.status === "failed" ? " failed" : ""), "data-id": u.execution },
            h("td", { class: "id" }, CMF.link(["run", u.execution], fmt.shortId(u.execution), { class: "run-link" })),
            h("td", null, fmt.value(u.pipeline)),
            h("td", null, fmt.value(u.stage)),
            h("td", null, fmt.value(u.role)),
            h("td", { class: "time" }, fmt.time(u.started_at)),
            h("td", null, fmt.value(u.status))
          )
        );
      });
      used.appendChild(ub);
      root.appendChild(used);
      CMF.append(root, more("used-more", (data.used_by || []).length, data.used_total, "runs"));
      if (!(data.used_by || []).length) root.appendChild(h("p", { class: "empty" }, "not used by any recorded run"));
      main.appendChild(root);
    });
  }

  // "the newest N of M" when the server listed fewer than there are.
  function more(id, shown, total, what) {
    if (typeof total !== "number" || total <= shown) return null;
    return h("p", { class: "empty", id: id }, "the newest " + fmt.count(shown) + " of " + fmt.count(total) + " " + what);
  }

  CMF.pages.artifacts = { render: list };
  CMF.pages.artifact = { render: one };
})();
