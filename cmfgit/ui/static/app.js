/* The router: #/<page>/<arg>?<query> -> CMF.pages[<page>].render(main, arg, query).
 * Hash routes, so the same page works from the server and from file://.
 *
 * A page's render may return a Promise; when the route changes while it is loading, the
 * stale page is dropped (each render gets a token; pages check CMF.current(token)). */
(function () {
  "use strict";
  var CMF = window.CMF;
  var h = CMF.h;
  var token = 0;

  var NAV = { runs: "runs", run: "runs", compare: "runs", lineage: "runs", artifacts: "artifacts", artifact: "artifacts", pipelines: "pipelines" };

  CMF.current = function (t) {
    return t === token;
  };

  CMF.go = function (hash) {
    if (location.hash === hash) render();
    else location.hash = hash;
  };

  function render() {
    var r = CMF.parseHash(location.hash);
    var name = r.path[0] || "runs";
    var page = CMF.pages[name];
    var main = document.getElementById("page");
    var my = ++token;
    if (CMF.onLeave) {
      try {
        CMF.onLeave();
      } catch (e) {
        /* a page's cleanup must not stop the next page */
      }
      CMF.onLeave = null;
    }
    document.querySelectorAll("a[data-nav]").forEach(function (a) {
      a.classList.toggle("active", a.getAttribute("data-nav") === NAV[name]);
    });
    CMF.clear(main);
    if (!page) {
      main.appendChild(h("p", { class: "error" }, "No such page: " + name));
      return;
    }
    var out;
    try {
      out = page.render(main, r.path.slice(1).join("/"), r.query, my);
    } catch (e) {
      show(main, e, my);
      return;
    }
    if (out && typeof out.then === "function") {
      out.catch(function (e) {
        show(main, e, my);
      });
    }
  }

  function show(main, err, my) {
    if (!CMF.current(my)) return;
    if (err instanceof Error && typeof console !== "undefined") console.error(err); // a bug, not an answer
    main.appendChild(CMF.errorBox(err, "page-error"));
  }

  function header() {
    CMF.source
      .get("info", {})
      .then(function (info) {
        var el = document.getElementById("info");
        CMF.clear(el);
        el.appendChild(h("span", { class: "repo" }, info.name));
        el.appendChild(h("span", { class: "scope" }, info.scope));
        el.appendChild(h("span", { class: "count" }, CMF.fmt.count(info.executions) + " runs"));
        if (typeof info.unreadable === "number" && info.unreadable > 0) {
          el.appendChild(
            h("span", { class: "warn", id: "unreadable" }, info.unreadable + " record(s) could not be read and are left out; run 'cmfgit fsck'")
          );
        }
        CMF.info = info;
        document.title = "cmfgit: " + info.name;
      })
      .catch(function () {
        /* the header is optional */
      });
  }

  window.addEventListener("hashchange", render);
  document.addEventListener("DOMContentLoaded", function () {
    if (!CMF.source) {
      document.getElementById("page").textContent = "No data source (config.js is missing).";
      return;
    }
    header();
    render();
  });
})();
