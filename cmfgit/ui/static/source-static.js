/* The static site's data source: CMF.source.get(endpoint, params) -> Promise<JSON>,
 * answering the server's endpoints (cmfgit/ui/api.py) with the same JSON, from the data
 * files `cmfgit site build` wrote (cmfgit/ui/site.py describes them).
 *
 * Data files are scripts that call CMF_DATA.put(name, payload): a page opened from
 * file:// may load scripts from its folder, where fetch/XHR are refused. Each file is
 * loaded once, when a question first needs it. Errors reject with the server's 400
 * body: {error: "one-line message", where: {text, pos} | null}.
 */
(function () {
  "use strict";

  var cfg = window.CMF_CONFIG || {};
  var W = window.CMF_WHERE;
  var entries = {}; // name -> {promise, resolve, reject}

  window.CMF_DATA = {
    put: function (name, payload) {
      var e = entries[name];
      if (e) e.resolve(payload);
    },
  };

  function load(name) {
    var e = entries[name];
    if (e) return e.promise;
    e = entries[name] = {};
    e.promise = new Promise(function (resolve, reject) {
      e.resolve = resolve;
      e.reject = reject;
    });
    var script = document.createElement("script");
    script.src = "data/" + name + ".js";
    script.charset = "utf-8";
    script.onerror = function () {
      e.reject(fail("cannot read data/" + name + ".js of this site (was it copied whole?)"));
      script.remove();
    };
    script.onload = function () {
      script.remove();
      e.reject(fail("data/" + name + ".js of this site holds no data"));
    };
    document.head.appendChild(script);
    return e.promise;
  }

  function fail(message, where) {
    return { error: message, where: where || null };
  }

  function whereFail(err) {
    // A WhereError, as the server answers it (api.py: the message and the spot).
    return fail(err.full.split("\n")[0], { text: err.text, pos: err.pos });
  }

  /* -- the runs table, by column --------------------------------------------------------- */

  var COUNT = cfg.count || 0;
  var BLOCK = cfg.block || 20000;
  var NBLOCKS = cfg.blocks || 0;
  var KEYS = cfg.keys || { params: [], metrics: [], tags: [] };
  var INDEXED = cfg.indexed || { params: [], metrics: [] };
  var keyIndex = {};
  ["params", "metrics", "tags"].forEach(function (ns) {
    var m = new Map();
    (KEYS[ns] || []).forEach(function (k, i) {
      m.set(k, i);
    });
    keyIndex[ns] = m;
  });

  var blocks = {}; // "col/n" -> promise of {v, r: Set|null, x: object|null}

  function block(col, n) {
    var key = col + "/" + n;
    if (!blocks[key]) {
      blocks[key] = load("runs-" + col + "-" + n).then(function (b) {
        var v = b.v;
        if (!v) {
          v = new Array(b.c.length);
          for (var i = 0; i < b.c.length; i++) v[i] = b.c[i] < 0 ? null : b.d[b.c[i]];
        }
        return { v: v, r: b.r ? new Set(b.r) : null, x: b.x || null };
      });
    }
    return blocks[key];
  }

  var columns = {}; // col -> promise of a whole column {value(row), real(row), shown(row)}

  function column(col) {
    if (!columns[col]) {
      var parts = [];
      for (var n = 0; n < NBLOCKS; n++) parts.push(block(col, n));
      columns[col] = Promise.all(parts).then(function (bs) {
        return {
          value: function (r) {
            return bs[(r / BLOCK) | 0].v[r % BLOCK];
          },
          real: function (r) {
            var b = bs[(r / BLOCK) | 0];
            return b.r !== null && b.r.has(r % BLOCK);
          },
        };
      });
    }
    return columns[col];
  }

  function columnOf(field) {
    if (!field.ns) return W.CORE_FIELDS[field.name] ? W.CORE_FIELDS[field.name][0] : field.name;
    var i = keyIndex[field.ns].get(field.name);
    return i === undefined ? null : field.ns.charAt(0) + i;
  }

  // The values of some columns at some rows: only the blocks holding those rows are read.
  function valuesAt(cols, rows) {
    var need = {};
    rows.forEach(function (r) {
      need[(r / BLOCK) | 0] = true;
    });
    var wanted = [];
    cols.forEach(function (c) {
      Object.keys(need).forEach(function (n) {
        wanted.push(
          block(c, Number(n)).then(function (b) {
            return [c, Number(n), b];
          })
        );
      });
    });
    return Promise.all(wanted).then(function (found) {
      var by = {};
      found.forEach(function (f) {
        by[f[0] + "/" + f[1]] = f[2];
      });
      return function (c, r) {
        var b = by[c + "/" + ((r / BLOCK) | 0)];
        var off = r % BLOCK;
        if (b.x !== null && Object.prototype.hasOwnProperty.call(b.x, off)) return { present: true, value: b.x[off] };
        var v = b.v[off];
        return { present: v !== null && v !== undefined, value: v };
      };
    });
  }

  function hasKey(ns, name) {
    return keyIndex[ns].has(name);
  }

  function unknownKey(f) {
    var close = W.closeMatches(f.name, f.ns === "tags" ? KEYS.tags : INDEXED[f.ns] || [], 1);
    var hint = close.length ? " (did you mean '" + f.ns + "." + close[0] + "'?)" : "";
    return "no execution has " + f.ns.slice(0, -1) + " '" + f.name + "'" + hint;
  }

  function intParam(value, fallback, name) {
    if (value === undefined || value === null || value === "") return fallback;
    var text = String(value).trim();
    if (!/^[0-9]+$/.test(text)) throw fail(name + " must be a whole number >= 0, not '" + value + "'");
    return Number(text);
  }

  function listParam(value) {
    if (value === undefined || value === null) return null;
    return String(value)
      .split(",")
      .map(function (s) {
        return s.trim();
      })
      .filter(Boolean);
  }

  var head = null;
  function headRows() {
    if (!head) head = load("runs-head");
    return head;
  }

  // The rows (row numbers) a where/sort selects, in order.
  function select(whereText, sortText) {
    var node = null;
    try {
      if (whereText !== undefined && whereText !== null && String(whereText).trim()) node = W.parse(String(whereText));
    } catch (e) {
      if (e instanceof W.WhereError) return Promise.reject(whereFail(e));
      throw e;
    }
    var sk;
    try {
      sk = W.sortKey(sortText || "-started_at");
    } catch (e) {
      if (e && e.usage) return Promise.reject(fail(e.message));
      throw e;
    }
    if (node) {
      var fs = W.fields(node);
      for (var i = 0; i < fs.length; i++) {
        if (fs[i].ns && !hasKey(fs[i].ns, fs[i].name)) {
          return Promise.reject(whereFail(new W.WhereError(String(whereText), unitPos(whereText, fs[i].pos), unknownKey(fs[i]))));
        }
      }
    }
    if (sk.field.ns && !hasKey(sk.field.ns, sk.field.name)) return Promise.reject(fail("--sort: " + unknownKey(sk.field)));
    var isDefault = !sk.field.ns && W.CORE_FIELDS[sk.field.name] && W.CORE_FIELDS[sk.field.name][0] === "started_at" && sk.descending;
    var needed = node ? W.fields(node).map(columnOf) : [];
    var sortCol = isDefault ? null : columnOf(sk.field);
    return Promise.all(
      needed.concat(sortCol ? [sortCol] : []).map(function (c) {
        return column(c).then(function (col) {
          return [c, col];
        });
      })
    ).then(function (found) {
      var cols = {};
      found.forEach(function (f) {
        cols[f[0]] = f[1];
      });
      var rows = [];
      if (node) {
        var pred = W.compile(node, function (field) {
          return cols[columnOf(field)];
        });
        for (var r = 0; r < COUNT; r++) if (pred(r)) rows.push(r);
      } else {
        rows = null; // every row
      }
      if (isDefault) return { rows: rows };
      var all = rows || range(COUNT);
      var col = cols[sortCol];
      var withKey = [], without = [];
      for (var j = 0; j < all.length; j++) {
        var v = col.value(all[j]);
        (v === null || v === undefined ? without : withKey).push(all[j]);
      }
      var dir = sk.descending ? -1 : 1;
      withKey.sort(function (a, b) {
        return dir * W.compareValues(col.value(a), col.value(b)) || a - b; // ties: newest first, then id
      });
      return { rows: withKey.concat(without) };
    });
  }

  // A code point position (where.py's) back to a UTF-16 offset, for WhereError.
  function unitPos(text, pos) {
    var chars = Array.from(String(text));
    return chars.slice(0, pos).join("").length;
  }

  function range(n) {
    var out = new Array(n);
    for (var i = 0; i < n; i++) out[i] = i;
    return out;
  }

  var ROW_CORE = ["id", "pipeline", "stage", "started_at", "duration", "status", "exit_code", "site"];

  function rowsAt(rows, chosen) {
    var pcols = chosen.params.map(function (k) {
      return columnOf({ ns: "params", name: k });
    });
    var mcols = chosen.metrics.map(function (k) {
      return columnOf({ ns: "metrics", name: k });
    });
    var cols = ROW_CORE.concat(pcols.filter(Boolean), mcols.filter(Boolean));
    return valuesAt(cols, rows).then(function (at) {
      return rows.map(function (r) {
        var row = {};
        ROW_CORE.forEach(function (c) {
          row[c] = at(c, r).value;
        });
        row.params = pick(chosen.params, pcols, at, r);
        row.metrics = pick(chosen.metrics, mcols, at, r);
        return row;
      });
    });
  }

  function pick(names, cols, at, r) {
    var out = {};
    names.forEach(function (k, i) {
      if (!cols[i]) return;
      var got = at(cols[i], r);
      if (got.present) out[k] = got.value;
    });
    return out;
  }

  function chosenColumns(params) {
    var p = listParam(params.params);
    var m = listParam(params.metrics);
    var def = cfg.columns || { params: [], metrics: [] };
    return {
      params: (p === null ? def.params : p).filter(function (k) {
        return hasKey("params", k);
      }),
      metrics: (m === null ? def.metrics : m).filter(function (k) {
        return hasKey("metrics", k);
      }),
    };
  }

  function runs(params) {
    var offset, limit;
    try {
      offset = intParam(params.offset, 0, "offset");
      limit = intParam(params.limit, 50, "limit");
    } catch (e) {
      return Promise.reject(e);
    }
    var chosen = chosenColumns(params);
    return select(params.where, params.sort).then(function (sel) {
      var total = sel.rows ? sel.rows.length : COUNT;
      var page = sel.rows ? sel.rows.slice(offset, offset + limit) : range(Math.max(0, Math.min(limit, COUNT - offset))).map(function (i) {
        return i + offset;
      });
      var answer = function (rows) {
        return {
          total: total,
          offset: offset,
          limit: limit,
          rows: rows,
          keys: { params: KEYS.params.slice(), metrics: KEYS.metrics.slice(), tags: KEYS.tags.slice() },
          columns: chosen,
        };
      };
      var inHead = page.every(function (r) {
        return r < (cfg.head || 0);
      });
      if (inHead) {
        return headRows().then(function (h) {
          return answer(
            page.map(function (r) {
              var full = h.rows[r];
              var row = {};
              ROW_CORE.forEach(function (c) {
                row[c] = full[c];
              });
              row.params = subset(full.params, chosen.params);
              row.metrics = subset(full.metrics, chosen.metrics);
              return row;
            })
          );
        });
      }
      return rowsAt(page, chosen).then(answer);
    });
  }

  function subset(values, names) {
    var out = {};
    names.forEach(function (k) {
      if (values && Object.prototype.hasOwnProperty.call(values, k)) out[k] = values[k];
    });
    return out;
  }

  /* -- one run, and runs by id ------------------------------------------------------------- */

  var PREFIX = cfg.prefix || 1;

  function isHex(text) {
    return /^[0-9a-f]+$/.test(text);
  }

  // The full id of an id prefix (or @N, STAGE@N), as CmfQuery.resolve_record answers.
  function resolveRun(text) {
    var raw = text === undefined || text === null ? "" : String(text);
    var rel = relativeRun(raw);
    if (rel) return nthRun(rel[0], rel[1], raw.trim());
    var low = raw.trim().toLowerCase();
    if (low.length < 4 || !isHex(low)) return Promise.reject(fail("'" + raw + "' is not a record id (4 to 64 hex digits)"));
    return load("run-" + low.slice(0, PREFIX)).then(
      function (group) {
        var found = Object.keys(group)
          .filter(function (id) {
            return id.lastIndexOf(low, 0) === 0;
          })
          .sort();
        if (!found.length) throw fail("no record matches '" + raw + "'");
        if (found.length > 1) {
          var shown = found.slice(0, 5).map(function (c) {
            return c.slice(0, 12);
          });
          var more = found.length > 5 ? " and " + (found.length - 5) + " more" : "";
          throw fail("prefix '" + raw + "' is ambiguous: " + shown.join(", ") + more);
        }
        return { id: found[0], payload: group[found[0]] };
      },
      function () {
        throw fail("no record matches '" + raw + "'");
      }
    );
  }

  function relativeRun(text) {
    var t = text.trim();
    var at = t.lastIndexOf("@");
    if (at < 0) return null;
    var stage = t.slice(0, at), number = t.slice(at + 1);
    if (!/^[0-9]+$/.test(number) || /\s/.test(stage)) return null;
    return [stage || null, Number(number)];
  }

  function nthRun(stage, n, text) {
    if (n < 1) return Promise.reject(fail("'" + text + "': runs count from 1 (@1 is the newest)"));
    var pick = stage === null ? Promise.resolve(n <= COUNT ? n - 1 : -1) : column("stage").then(function (col) {
      var seen = 0;
      for (var r = 0; r < COUNT; r++) if (col.value(r) === stage && ++seen === n) return r;
      return -seen - 1;
    });
    return pick.then(function (row) {
      if (row < 0) {
        var have = stage === null ? COUNT : -row - 1;
        var of = stage ? " of stage '" + stage + "'" : "";
        throw fail("'" + text + "': there are only " + have + " execution(s)" + of);
      }
      return valuesAt(["id"], [row]).then(function (at) {
        return resolveRun(at("id", row).value);
      });
    });
  }

  function run(params) {
    return resolveRun(params.id).then(function (found) {
      return found.payload;
    });
  }

  /* -- compare ------------------------------------------------------------------------------- */

  function isNumber(v) {
    return typeof v === "number" && isFinite(v);
  }

  function compare(params) {
    var ids = listParam(params.ids) || [];
    if (ids.length < 2) return Promise.reject(fail("compare needs at least two run ids"));
    return Promise.all(ids.map(resolveRun)).then(function (found) {
      var objs = found.map(function (f) {
        return f.payload;
      });
      var rows = objs.map(function (p) {
        var r = p.run;
        return {
          id: r.id,
          pipeline: r.pipeline,
          stage: r.stage,
          started_at: r.started_at,
          duration: duration(r.started_at, r.ended_at),
          status: status(r.exit_code, r.ended_at),
          exit_code: typeof r.exit_code === "number" ? r.exit_code : null,
          site: r.site,
          params: r.params || {},
          metrics: r.metrics || {},
        };
      });
      function table(ns) {
        var names = [];
        rows.forEach(function (r) {
          Object.keys(r[ns]).forEach(function (k) {
            if (names.indexOf(k) < 0) names.push(k);
          });
        });
        names.sort(naturalCompare);
        return names.map(function (k) {
          var values = rows.map(function (r) {
            return Object.prototype.hasOwnProperty.call(r[ns], k) ? r[ns][k] : null;
          });
          var first = JSON.stringify(values[0]);
          var changed = values.some(function (v) {
            return JSON.stringify(v) !== first;
          });
          var delta = values.map(function (v, i) {
            if (i === 0 || !isNumber(v) || !isNumber(values[0]) || typeof v === "boolean") return null;
            return v - values[0];
          });
          return { key: k, values: values, changed: changed, delta: delta };
        });
      }
      var steps = {};
      objs.forEach(function (p) {
        Object.keys(p.steps || {}).forEach(function (m) {
          (steps[m] = steps[m] || {})[p.run.id] = p.steps[m];
        });
      });
      return { runs: rows, params: table("params"), metrics: table("metrics"), steps: steps };
    });
  }

  function naturalCompare(a, b) {
    var re = /(\d+)/;
    var pa = a.split(re).filter(Boolean), pb = b.split(re).filter(Boolean);
    for (var i = 0; i < Math.min(pa.length, pb.length); i++) {
      var da = /^\d+$/.test(pa[i]), db = /^\d+$/.test(pb[i]);
      if (da && db) {
        var d = Number(pa[i]) - Number(pb[i]);
        if (d) return d;
      } else if (da !== db) {
        return da ? -1 : 1;
      } else if (pa[i] !== pb[i]) {
        return W.compareText(pa[i], pb[i]);
      }
    }
    return pa.length - pb.length;
  }

  function parseTime(text) {
    if (typeof text !== "string") return null;
    var t = Date.parse(text);
    if (isNaN(t)) return null;
    var frac = /\.(\d+)/.exec(text);
    var micro = frac ? Number((frac[1] + "000000").slice(0, 6)) : 0;
    return Math.floor(t / 1000) * 1e6 + micro;
  }

  function duration(started, ended) {
    var a = parseTime(started), b = parseTime(ended);
    return a === null || b === null ? null : (b - a) / 1e6;
  }

  function status(code, ended) {
    if (code === 0) return "ok";
    if ((code === null || code === undefined) && (ended === null || ended === undefined)) return "running";
    return "failed";
  }

  /* -- lineage ------------------------------------------------------------------------------- */

  var graphData = null;
  function graph() {
    if (!graphData) graphData = load("graph");
    return graphData;
  }

  // graph.py's Graph._walk over the site's graph: rows are executions, numbers are artifacts.
  function walk(g, start, up, depth, levels) {
    var toExecs = up ? g.producers : g.consumers;
    var toArts = up ? g.inputs : g.outputs;
    var seenExecs = new Set(), seenArts = new Set();
    var arts = [];
    function note(key, level) {
      if (!levels.has(key) || level < levels.get(key)) levels.set(key, level);
    }
    start.forEach(function (node) {
      note(node, 0);
      if (node.charAt(0) === "a") {
        var a = Number(node.slice(1));
        if (!seenArts.has(a)) {
          seenArts.add(a);
          arts.push(a);
        }
      } else {
        var row = Number(node.slice(1));
        if (!seenExecs.has(row)) {
          seenExecs.add(row);
          (toArts[row] || []).forEach(function (k) {
            note("a" + k, 0);
            if (!seenArts.has(k)) {
              seenArts.add(k);
              arts.push(k);
            }
          });
        }
      }
    });
    var level = 0;
    while (arts.length && (depth === null || level < depth)) {
      level += 1;
      var execs = [];
      arts.forEach(function (k) {
        (toExecs[k] || []).forEach(function (row) {
          if (!seenExecs.has(row)) {
            seenExecs.add(row);
            execs.push(row);
          }
        });
      });
      arts = [];
      execs.forEach(function (row) {
        note("e" + row, level);
        (toArts[row] || []).forEach(function (k) {
          note("a" + k, level);
          if (!seenArts.has(k)) {
            seenArts.add(k);
            arts.push(k);
          }
        });
      });
    }
  }

  // lineage.resolve_target, without a working tree: @N, an execution id prefix, an artifact
  // hash or prefix, or a recorded path.
  function resolveTarget(g, target) {
    var text = String(target === undefined || target === null ? "" : target).trim();
    if (!text) return Promise.reject(fail("lineage needs a target: a path, an artifact hash or an execution id"));
    function rowOf(id) {
      return column("id").then(function (col) {
        for (var r = 0; r < COUNT; r++) if (col.value(r) === id) return ["e" + r];
        throw fail("no record matches '" + id + "'");
      });
    }
    if (relativeRun(text)) {
      return resolveRun(text).then(function (f) {
        return rowOf(f.id);
      });
    }
    var low = text.toLowerCase();
    if (/^(blake3|md5):/.test(low)) {
      var hits = artPrefix(g, low);
      if (!hits.length) return Promise.reject(fail("no artifact matches '" + low + "'"));
      return Promise.resolve(hits);
    }
    if (low.length >= 4 && isHex(low)) {
      var arts = artPrefix(g, low);
      return resolveRun(low).then(
        function (f) {
          if (arts.length) throw fail("'" + text + "' is both an execution id and an artifact hash prefix; give more digits");
          return rowOf(f.id);
        },
        function (err) {
          if (arts.length) return arts;
          if (/is ambiguous/.test(err.error)) throw err;
          return byPath(g, text, target);
        }
      );
    }
    return byPath(g, text, target);
  }

  function artPrefix(g, prefix) {
    var found = new Set();
    function test(h, idx) {
      var name = prefix.indexOf(":") >= 0 ? h : h.slice(h.indexOf(":") + 1);
      if (name.lastIndexOf(prefix, 0) === 0) found.add(idx);
    }
    g.keys.forEach(test);
    Object.keys(g.canon).forEach(function (h) {
      test(h, g.canon[h]);
    });
    return Array.from(found)
      .sort(function (a, b) {
        return a - b;
      })
      .map(function (i) {
        return "a" + i;
      });
  }

  function byPath(g, path, target) {
    var found = [];
    g.paths.forEach(function (ps, i) {
      if (ps.indexOf(path) >= 0) found.push("a" + i);
    });
    if (!found.length) return Promise.reject(fail("no artifact, path or execution matches '" + target + "'"));
    return Promise.resolve(found);
  }

  function lineage(params) {
    var dir = params.dir || "up";
    if (["up", "down", "both"].indexOf(dir) < 0) return Promise.reject(fail("dir must be up, down or both"));
    var depth = null;
    try {
      depth = params.depth === undefined || params.depth === null || params.depth === "" ? null : intParam(params.depth, null, "depth");
    } catch (e) {
      return Promise.reject(e);
    }
    return graph().then(function (g) {
      return resolveTarget(g, params.target).then(function (roots) {
        var levels = new Map();
        (dir === "both" ? ["up", "down"] : [dir]).forEach(function (way) {
          walk(g, roots, way === "up", depth, levels);
        });
        return describe(g, roots, levels);
      });
    });
  }

  function describe(g, roots, levels) {
    var execRows = [];
    levels.forEach(function (_l, key) {
      if (key.charAt(0) === "e") execRows.push(Number(key.slice(1)));
    });
    return valuesAt(["id", "pipeline", "stage", "exit_code", "status", "started_at", "type"], execRows).then(function (at) {
      function idOf(key) {
        var n = Number(key.slice(1));
        return key.charAt(0) === "e" ? at("id", n).value : g.keys[n];
      }
      var keys = Array.from(levels.keys());
      keys.sort(function (a, b) {
        var d = levels.get(a) - levels.get(b);
        if (d) return d;
        if (a.charAt(0) !== b.charAt(0)) return a.charAt(0) === "a" ? -1 : 1; // Node order: artifact < execution
        return W.compareText(idOf(a), idOf(b));
      });
      var nodes = keys.map(function (key) {
        var n = Number(key.slice(1));
        if (key.charAt(0) === "e") {
          var stage = at("stage", n).value;
          return {
            id: at("id", n).value,
            kind: "execution",
            label: (at("pipeline", n).value || "") + "/" + (stage || ""),
            type: at("type", n).value,
            pipeline: at("pipeline", n).value,
            stage: stage,
            path: null,
            status: at("status", n).value,
          };
        }
        var paths = g.paths[n];
        var types = g.types[n];
        return {
          id: g.keys[n],
          kind: "artifact",
          label: paths.length ? paths[0] : g.keys[n].slice(0, 19),
          type: types.length ? types[0] : null,
          pipeline: null,
          stage: null,
          path: paths.length ? paths[0] : null,
          status: null,
        };
      });
      var edges = [];
      execRows.forEach(function (row) {
        var id = at("id", row).value;
        (g.inputs[row] || []).forEach(function (k) {
          if (levels.has("a" + k)) edges.push({ source: g.keys[k], target: id, role: "input" });
        });
        (g.outputs[row] || []).forEach(function (k) {
          if (levels.has("a" + k)) edges.push({ source: id, target: g.keys[k], role: "output" });
        });
      });
      edges.sort(function (a, b) {
        return W.compareText(a.source, b.source) || W.compareText(a.target, b.target) || W.compareText(a.role, b.role);
      });
      return { roots: roots.map(idOf), nodes: nodes, edges: edges, truncated: false };
    });
  }

  /* -- artifacts --------------------------------------------------------------------------------- */

  var eventsData = null;
  function events() {
    if (!eventsData) {
      eventsData = load("events").then(function (e) {
        var out = { hashes: e.hashes };
        ["row", "dir", "hash", "path", "type", "kind", "size"].forEach(function (k) {
          var b = e[k];
          var v = b.v;
          if (!v) {
            v = new Array(b.c.length);
            for (var i = 0; i < b.c.length; i++) v[i] = b.c[i] < 0 ? null : b.d[b.c[i]];
          }
          out[k] = v;
        });
        return out;
      });
    }
    return eventsData;
  }

  function artifactSummaries(ev, startedAt) {
    // one entry per hash: its latest path, type and size, when it was last used, how many runs used it
    var by = new Map();
    for (var i = 0; i < ev.row.length; i++) {
      var h = ev.hash[i];
      var s = by.get(h);
      var t = startedAt(ev.row[i]);
      if (!s) {
        s = { hash: ev.hashes[h], path: null, type: null, size: null, last_used: null, uses: 0, rows: new Set(), at: null };
        by.set(h, s);
      }
      if (!s.rows.has(ev.row[i])) {
        s.rows.add(ev.row[i]);
        s.uses += 1;
      }
      if (s.at === null || (t !== null && W.compareText(t, s.at) >= 0)) {
        s.at = t;
        if (ev.path[i] !== null) s.path = ev.path[i];
        if (ev.type[i] !== null) s.type = ev.type[i];
      }
      if (ev.size[i] !== null) s.size = ev.size[i];
      if (t !== null && (s.last_used === null || W.compareText(t, s.last_used) > 0)) s.last_used = t;
    }
    return by;
  }

  function artifacts(params) {
    var offset, limit;
    try {
      offset = intParam(params.offset, 0, "offset");
      limit = intParam(params.limit, 50, "limit");
    } catch (e) {
      return Promise.reject(e);
    }
    return Promise.all([events(), column("started_at")]).then(function (got) {
      var ev = got[0], started = got[1];
      var by = artifactSummaries(ev, started.value);
      var types = new Set();
      var rows = [];
      by.forEach(function (s) {
        if (s.type !== null) types.add(s.type);
        if (params.type && s.type !== params.type) return;
        if (params.path && s.path !== params.path) return;
        rows.push({ hash: s.hash, path: s.path, type: s.type, size: s.size, last_used: s.last_used, uses: s.uses });
      });
      rows.sort(function (a, b) {
        if (a.last_used !== b.last_used) {
          if (a.last_used === null) return 1;
          if (b.last_used === null) return -1;
          return -W.compareText(a.last_used, b.last_used);
        }
        return W.compareText(a.hash, b.hash);
      });
      return {
        total: rows.length,
        types: Array.from(types).sort(W.compareText),
        rows: rows.slice(offset, offset + limit),
      };
    });
  }

  function artifact(params) {
    var wanted = String(params.hash || "").trim().toLowerCase();
    return Promise.all([events(), column("started_at")]).then(function (got) {
      var ev = got[0], started = got[1];
      var idx = -1;
      for (var i = 0; i < ev.hashes.length; i++) {
        if (ev.hashes[i] === wanted || (wanted.length >= 4 && ev.hashes[i].split(":").pop().lastIndexOf(wanted, 0) === 0) || ev.hashes[i].lastIndexOf(wanted, 0) === 0) {
          if (idx >= 0 && ev.hashes[idx] !== ev.hashes[i]) throw fail("artifact prefix '" + wanted + "' is ambiguous");
          idx = i;
        }
      }
      if (idx < 0 || !wanted) throw fail("no artifact matches '" + (params.hash || "") + "'");
      var by = artifactSummaries(ev, started.value);
      var me = by.get(idx);
      var path = me.path;
      var usedRows = [];
      var versions = new Map();
      for (var j = 0; j < ev.row.length; j++) {
        if (ev.hash[j] === idx) usedRows.push(j);
        if (path !== null && ev.path[j] === path) {
          var h = ev.hash[j];
          var v = versions.get(h);
          var t = started.value(ev.row[j]);
          if (!v) versions.set(h, (v = { hash: ev.hashes[h], size: ev.size[j], first_seen: t, produced_by: [] , rows: []}));
          if (t !== null && (v.first_seen === null || W.compareText(t, v.first_seen) < 0)) v.first_seen = t;
          if (ev.dir[j] === 1) v.rows.push(ev.row[j]);
        }
      }
      var rowsNeeded = usedRows.map(function (j) {
        return ev.row[j];
      });
      versions.forEach(function (v) {
        rowsNeeded = rowsNeeded.concat(v.rows);
      });
      return valuesAt(["id", "pipeline", "stage", "started_at"], rowsNeeded).then(function (at) {
        var used = usedRows.map(function (j) {
          var r = ev.row[j];
          return {
            execution: at("id", r).value,
            pipeline: at("pipeline", r).value,
            stage: at("stage", r).value,
            role: ev.dir[j] === 1 ? "output" : "input",
            started_at: at("started_at", r).value,
          };
        });
        used.sort(function (a, b) {
          return W.compareText(a.started_at || "", b.started_at || "") || W.compareText(a.execution, b.execution);
        });
        var vs = [];
        versions.forEach(function (v) {
          vs.push({
            hash: v.hash,
            size: v.size,
            first_seen: v.first_seen,
            produced_by: v.rows.map(function (r) {
              return at("id", r).value;
            }),
          });
        });
        vs.sort(function (a, b) {
          return W.compareText(a.first_seen || "", b.first_seen || "") || W.compareText(a.hash, b.hash);
        });
        return {
          artifact: { hash: me.hash, path: me.path, type: me.type, size: me.size },
          versions: vs,
          used_by: used,
        };
      });
    });
  }

  /* -- the endpoints -------------------------------------------------------------------------- */

  var ENDPOINTS = {
    info: function () {
      return Promise.resolve(cfg.info);
    },
    runs: runs,
    run: run,
    compare: compare,
    lineage: lineage,
    artifacts: artifacts,
    artifact: artifact,
    pipelines: function () {
      return load("pipelines");
    },
  };

  function get(endpoint, params) {
    var handler = Object.prototype.hasOwnProperty.call(ENDPOINTS, endpoint) ? ENDPOINTS[endpoint] : null;
    if (!handler) return Promise.reject(fail("no such endpoint: " + endpoint));
    try {
      return handler(params || {}).then(function (value) {
        return JSON.parse(JSON.stringify(value)); // a copy: callers may change what they get
      });
    } catch (e) {
      return Promise.reject(e && e.error ? e : fail(String(e && e.message ? e.message : e)));
    }
  }

  window.CMF = window.CMF || {};
  window.CMF.source = { get: get, mode: "static" };
})();
