/* Helpers every page uses: building DOM from data (always as text), formatting values,
 * routes and errors. Classic script: everything hangs off window.CMF (ES modules do not
 * load from file:// in Chromium, and the static site opens from there).
 *
 * The one rule: a value from a record never reaches innerHTML. Elements are made with
 * createElement, and data goes in through textContent / createTextNode / setAttribute.
 */
(function () {
  "use strict";
  var CMF = (window.CMF = window.CMF || {});

  /* h("td", {class: "num", "data-id": id}, "text", child, [more]) -> element.
   * Strings and numbers become text nodes; null/undefined/false are skipped. */
  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "on") {
          Object.keys(v).forEach(function (ev) {
            el.addEventListener(ev, v[ev]);
          });
        } else if (k === "class") {
          el.className = v;
        } else if (k === "text") {
          el.textContent = String(v);
        } else if (k === "checked" || k === "disabled" || k === "selected" || k === "value") {
          el[k] = v;
        } else {
          el.setAttribute(k, v === true ? "" : String(v));
        }
      });
    }
    for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }

  function append(el, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) {
      child.forEach(function (c) {
        append(el, c);
      });
    } else if (child instanceof Node) {
      el.appendChild(child);
    } else {
      el.appendChild(document.createTextNode(String(child)));
    }
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  }

  /* -- formatting (text only) --------------------------------------------------------- */

  function value(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    return JSON.stringify(v);
  }

  function time(t) {
    if (!t || typeof t !== "string") return "";
    // 2026-01-01T12:00:00.000000Z -> 2026-01-01 12:00:00 (UTC, as recorded)
    var m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)/.exec(t);
    return m ? m[1] + " " + m[2] : t;
  }

  function duration(s) {
    if (s === null || s === undefined || typeof s !== "number") return "";
    if (s < 1) return (s * 1000).toFixed(0) + " ms";
    if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + " s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + " min " + Math.round(s - m * 60) + " s";
    var hrs = Math.floor(m / 60);
    return hrs + " h " + (m - hrs * 60) + " min";
  }

  function size(n) {
    if (n === null || n === undefined || typeof n !== "number") return "";
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return (i === 0 ? String(n) : n.toFixed(1)) + " " + units[i];
  }

  function number(n) {
    if (typeof n !== "number") return value(n);
    if (Number.isInteger(n)) return String(n);
    var a = Math.abs(n);
    if (a !== 0 && (a < 1e-4 || a >= 1e9)) return n.toExponential(4);
    return String(Number(n.toPrecision(6)));
  }

  function delta(d) {
    if (d === null || d === undefined || typeof d !== "number") return "";
    if (d === 0) return "0";
    return (d > 0 ? "+" : "") + number(d);
  }

  function shortId(id) {
    return typeof id === "string" ? id.replace(/^blake3:/, "").slice(0, 12) : value(id);
  }

  function count(n) {
    return typeof n === "number" ? n.toLocaleString("en-US") : value(n);
  }

  /* -- routes -------------------------------------------------------------------------- */

  // "#/runs?where=a&sort=b" -> {path: ["runs"], query: {where: "a", sort: "b"}}
  function parseHash(hash) {
    var text = (hash || "").replace(/^#\/?/, "");
    var q = text.indexOf("?");
    var path = q < 0 ? text : text.slice(0, q);
    var query = {};
    if (q >= 0) {
      new URLSearchParams(text.slice(q + 1)).forEach(function (v, k) {
        query[k] = v;
      });
    }
    return {
      path: path.split("/").filter(Boolean).map(function (s) {
        try {
          return decodeURIComponent(s);
        } catch (e) {
          return s;
        }
      }),
      query: query,
    };
  }

  // route(["lineage", target], {dir: "up"}) -> "#/lineage/<target>?dir=up"
  function route(parts, query) {
    // (commas stay as they are: #/compare/<id>,<id> reads better, and means the same)
    var text =
      "#/" +
      parts
        .map(function (p) {
          return encodeURIComponent(p).replace(/%2C/g, ",");
        })
        .join("/");
    if (query) {
      var qs = new URLSearchParams();
      Object.keys(query).forEach(function (k) {
        var v = query[k];
        if (v !== null && v !== undefined && v !== "") qs.set(k, String(v));
      });
      var s = qs.toString();
      if (s) text += "?" + s;
    }
    return text;
  }

  function link(parts, text, attrs) {
    var a = h("a", Object.assign({ href: route(parts) }, attrs || {}));
    a.textContent = text;
    return a;
  }

  /* -- errors -------------------------------------------------------------------------- */

  // An API error ({error, where}) as an element: the message, and the expression with a
  // caret under the column the error names.
  function errorBox(err, id) {
    var box = h("div", { class: "error", id: id || null, role: "alert" });
    box.appendChild(h("span", { class: "message" }, message(err)));
    var where = err && err.where;
    if (where && typeof where.text === "string") {
      var pos = Math.max(0, Math.min(Number(where.pos) || 0, where.text.length));
      box.appendChild(h("pre", { class: "caret" }, where.text + "\n" + " ".repeat(pos) + "^"));
    }
    return box;
  }

  function message(err) {
    if (!err) return "error";
    if (typeof err.error === "string") return err.error;
    if (err.message) return String(err.message);
    return String(err);
  }

  /* -- tables -------------------------------------------------------------------------- */

  // A two-column table of name -> value (params, metrics, env...).
  function kvTable(id, obj, empty) {
    var keys = Object.keys(obj || {});
    keys = naturalSort(keys);
    var table = h("table", { id: id, class: "kv" });
    var body = h("tbody");
    keys.forEach(function (k) {
      var v = obj[k];
      body.appendChild(h("tr", { "data-key": k }, h("th", null, k), h("td", { class: typeof v === "number" ? "num" : null }, value(v))));
    });
    table.appendChild(body);
    if (!keys.length) return h("div", null, table, h("p", { class: "empty" }, empty || "none"));
    return table;
  }

  // Natural order: lr_2 before lr_10 (numbers inside names compared as numbers).
  var collator = new Intl.Collator("en", { numeric: true, sensitivity: "base" });
  function naturalSort(list) {
    return list.slice().sort(function (a, b) {
      return collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
    });
  }

  // Colours by kind/type, shared by the graphs and the legends.
  var PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#bab0ac", "#e15759"];
  function colour(name, index) {
    if (typeof index === "number") return PALETTE[index % PALETTE.length];
    var s = String(name || "");
    var hash = 0;
    for (var i = 0; i < s.length; i++) hash = (hash * 31 + s.charCodeAt(i)) | 0;
    return PALETTE[Math.abs(hash) % PALETTE.length];
  }

  CMF.h = h;
  CMF.clear = clear;
  CMF.append = append;
  CMF.fmt = {
    value: value,
    time: time,
    duration: duration,
    size: size,
    number: number,
    delta: delta,
    shortId: shortId,
    count: count,
  };
  CMF.parseHash = parseHash;
  CMF.route = route;
  CMF.link = link;
  CMF.errorBox = errorBox;
  CMF.message = message;
  CMF.kvTable = kvTable;
  CMF.naturalSort = naturalSort;
  CMF.colour = colour;
  CMF.PALETTE = PALETTE;
  CMF.pages = CMF.pages || {};
})();
