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
  var DEFAULT_LIMIT = 50;
  var MAX_LIMIT = 1000;
  var DEFAULT_COLUMNS = 5;
  var MAX_NODES = 2000;
  var MAX_COMPARE = 50;
  var keyIndex = {};
  ["params", "metrics", "tags"].forEach(function (ns) {
    var m = new Map();
    (KEYS[ns] || []).forEach(function (k, i) {
      m.set(k, i);
    });
    keyIndex[ns] = m;
  });

  var blocks = {}; // "col/n" -> promise of {v, r: Set|null, x: object|null}

  function decode(b) {
    if (b.v) return b.v;
    var v = new Array(b.c.length);
    for (var i = 0; i < b.c.length; i++) v[i] = b.c[i] < 0 ? null : b.d[b.c[i]];
    return v;
  }

  function block(col, n) {
    var key = col + "/" + n;
    if (!blocks[key]) {
      blocks[key] = load("runs-" + col + "-" + n).then(function (b) {
        return { v: decode(b), r: b.r ? new Set(b.r) : null, x: b.x || null };
      });
    }
    return blocks[key];
  }

  var columns = {}; // col -> promise of a whole column {value(row), real(row)}

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
  // at(col, row) -> {present, value}: the value shown (a param's as recorded).
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
        return { present: v !== null && v !== undefined, value: v === undefined ? null : v };
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

  // api._int: blank -> the default; else Python's int() of the text
  function pyInt(params, name, fallback) {
    var text = params[name];
    if (text === undefined || text === null || !String(text).trim()) return fallback;
    var t = String(text).trim();
    if (!/^[+-]?[0-9]+(?:_[0-9]+)*$/.test(t)) throw fail(name + " must be a whole number, not '" + text + "'");
    return Number(t.replace(/_/g, ""));
  }

  // api._list
  function listParam(value) {
    if (value === undefined || value === null) return null;
    return String(value)
      .split(",")
      .map(function (s) {
        return s.trim();
      })
      .filter(Boolean);
  }

  function blank(text) {
    return text === undefined || text === null || !String(text).trim();
  }

  var head = null;
  function headRows() {
    if (!head) head = load("runs-head");
    return head;
  }

  // The rows (row numbers) a where/sort selects, in order (CmfQuery.execution_rowids).
  function select(whereText, sortText) {
    var node = null;
    try {
      if (!blank(whereText)) node = W.parse(String(whereText));
    } catch (e) {
      if (e instanceof W.WhereError) return Promise.reject(whereFail(e));
      throw e;
    }
    var sk;
    try {
      sk = W.sortKey(blank(sortText) ? "-started_at" : sortText);
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
    var core = !sk.field.ns && W.CORE_FIELDS[sk.field.name];
    var isDefault = core && core[0] === "started_at" && sk.descending;
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
      var rows = null; // null: every row
      if (node) {
        var pred = W.compile(node, function (field) {
          return cols[columnOf(field)];
        });
        rows = [];
        for (var r = 0; r < COUNT; r++) if (pred(r)) rows.push(r);
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
    return Array.from(String(text)).slice(0, pos).join("").length;
  }

  function range(n) {
    var out = new Array(n);
    for (var i = 0; i < n; i++) out[i] = i;
    return out;
  }

  var ROW_CORE = ["id", "pipeline", "stage", "started_at", "duration", "status", "exit_code", "site"];

  // compare.run_row of these rows, with the chosen params and metrics
  function rowsAt(rows, chosen) {
    var pcols = chosen.params.map(function (k) {
      return columnOf({ ns: "params", name: k });
    });
    var mcols = chosen.metrics.map(function (k) {
      return columnOf({ ns: "metrics", name: k });
    });
    var cols = ROW_CORE.concat(["commit", "dirty", "tree"], pcols.filter(Boolean), mcols.filter(Boolean));
    return valuesAt(cols, rows).then(function (at) {
      return rows.map(function (r) {
        var row = {};
        ROW_CORE.forEach(function (c) {
          row[c] = at(c, r).value;
        });
        row.code = { commit: at("commit", r).value, dirty: at("dirty", r).value, tree: at("tree", r).value };
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

  var keySets = {};
  function keySetsOf(ns) {
    if (!keySets[ns]) keySets[ns] = load("runs-" + ns + "-sets");
    return keySets[ns];
  }

  // api._common: the most common few keys of the page's runs, in natural order
  function common(lists, few) {
    var counts = new Map();
    lists.forEach(function (names) {
      names.forEach(function (k) {
        counts.set(k, (counts.get(k) || 0) + 1);
      });
    });
    var ranked = Array.from(counts.keys()).sort(function (a, b) {
      return counts.get(b) - counts.get(a) || naturalCompare(a, b);
    });
    return ranked.slice(0, few).sort(naturalCompare);
  }

  function pageColumns(page, params, sort, fromHead) {
    var nss = ["params", "metrics"];
    var keyLists = nss.map(function (ns) {
      if (listParam(params[ns]) !== null) return Promise.resolve(null);
      if (fromHead) {
        return Promise.resolve(
          page.map(function (r) {
            return Object.keys(fromHead[r][ns] || {});
          })
        );
      }
      return Promise.all([keySetsOf(ns), valuesAt([ns.charAt(0) + "k"], page)]).then(function (got) {
        return page.map(function (r) {
          return got[0][got[1](ns.charAt(0) + "k", r).value];
        });
      });
    });
    return Promise.all(keyLists).then(function (lists) {
      var out = {};
      nss.forEach(function (ns, i) {
        var given = listParam(params[ns]);
        if (given !== null) {
          out[ns] = given.filter(function (k, j) {
            return given.indexOf(k) === j;
          });
          return;
        }
        var picked = common(lists[i], DEFAULT_COLUMNS);
        var key = String(sort || "").replace(/^[+-]+/, "").trim();
        var rest = key.slice(ns.length + 1);
        if (key.lastIndexOf(ns + ".", 0) === 0 && picked.indexOf(rest) < 0) picked = picked.concat([rest]).sort(naturalCompare);
        out[ns] = picked;
      });
      return out;
    });
  }

  function runs(params) {
    var offset, limit;
    try {
      offset = pyInt(params, "offset", 0) || 0;
      limit = pyInt(params, "limit", DEFAULT_LIMIT) || 0;
      if (offset < 0) throw fail("offset must be >= 0");
      if (!(limit >= 0 && limit <= MAX_LIMIT)) throw fail("limit must be between 0 and " + MAX_LIMIT);
    } catch (e) {
      return Promise.reject(e);
    }
    var sort = blank(params.sort) ? null : String(params.sort);
    return select(params.where, sort).then(function (sel) {
      var total = sel.rows ? sel.rows.length : COUNT;
      var page = sel.rows
        ? sel.rows.slice(offset, offset + limit)
        : range(Math.max(0, Math.min(limit, COUNT - offset))).map(function (i) {
            return i + offset;
          });
      var inHead = page.every(function (r) {
        return r < (cfg.head || 0);
      });
      var answer = function (chosen, rows) {
        return {
          total: total,
          offset: offset,
          limit: limit,
          rows: rows,
          keys: { params: natural(INDEXED.params), metrics: natural(INDEXED.metrics), tags: KEYS.tags.slice() },
          columns: chosen,
        };
      };
      if (inHead) {
        return headRows().then(function (h) {
          return pageColumns(page, params, sort, h.rows).then(function (chosen) {
            return answer(
              chosen,
              page.map(function (r) {
                var full = h.rows[r];
                var row = {};
                ROW_CORE.forEach(function (c) {
                  row[c] = full[c];
                });
                row.code = full.code;
                row.params = subset(full.params, chosen.params);
                row.metrics = subset(full.metrics, chosen.metrics);
                return row;
              })
            );
          });
        });
      }
      return pageColumns(page, params, sort, null).then(function (chosen) {
        return rowsAt(page, chosen).then(function (rows) {
          return answer(chosen, rows);
        });
      });
    });
  }

  function natural(names) {
    return names.slice().sort(naturalCompare);
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
    if (blank(params.id)) return Promise.reject(fail("missing parameter 'id'"));
    return resolveRun(params.id).then(function (found) {
      return found.payload;
    });
  }

  /* -- compare (cmfgit/compare.py) ------------------------------------------------------------ */

  function isNumber(v) {
    return typeof v === "number"; // JSON: NaN and infinities are strings, booleans are booleans
  }

  function differ(a, b) {
    if (isNumber(a) && isNumber(b)) return a !== b;
    return JSON.stringify(a) !== JSON.stringify(b) || typeof a !== typeof b;
  }

  function deltas(values) {
    var first = values.length ? values[0] : null;
    var out = [null];
    for (var i = 1; i < values.length; i++) {
      var v = values[i];
      if (!(isNumber(first) && isNumber(v))) {
        out.push(null);
        continue;
      }
      var d = v - first;
      if (!(Number.isInteger(v) && Number.isInteger(first))) d = Number(d.toPrecision(12)) + 0;
      out.push(d);
    }
    return out;
  }

  function valueRows(mappings) {
    var keys = [];
    var seen = new Set();
    mappings.forEach(function (m) {
      Object.keys(m).forEach(function (k) {
        if (!seen.has(k)) {
          seen.add(k);
          keys.push(k);
        }
      });
    });
    keys.sort(naturalCompare);
    return keys.map(function (key) {
      var values = mappings.map(function (m) {
        return Object.prototype.hasOwnProperty.call(m, key) ? m[key] : null;
      });
      var present = new Set(
        mappings.map(function (m) {
          return Object.prototype.hasOwnProperty.call(m, key);
        })
      );
      var changed =
        present.size > 1 ||
        values.slice(1).some(function (v) {
          return differ(values[0], v);
        });
      return { key: key, values: values, changed: changed, delta: deltas(values) };
    });
  }

  function runRow(obj) {
    var git = obj.git || {};
    return {
      id: obj.id,
      pipeline: obj.pipeline === undefined ? null : obj.pipeline,
      stage: obj.stage === undefined ? null : obj.stage,
      started_at: obj.started_at === undefined ? null : obj.started_at,
      duration: duration(obj.started_at, obj.ended_at),
      status: status(obj.exit_code, obj.ended_at),
      exit_code: obj.exit_code === undefined ? null : obj.exit_code,
      site: obj.site === undefined ? null : obj.site,
      code: {
        commit: git.commit === undefined ? null : git.commit,
        dirty: git.dirty === undefined ? null : git.dirty,
        tree: git.tree === undefined ? null : git.tree,
      },
      params: Object.assign({}, obj.params || {}),
      metrics: Object.assign({}, obj.metrics || {}),
    };
  }

  function compare(params) {
    var ids = listParam(params.ids) || [];
    if (ids.length > MAX_COMPARE) return Promise.reject(fail("compare at most " + MAX_COMPARE + " runs at once, not " + ids.length));
    if (ids.length < 2) return Promise.reject(fail("compare needs at least 2 runs, got " + ids.length));
    var found = [];
    var seen = {};
    return ids
      .reduce(function (chain, ref) {
        return chain.then(function () {
          return resolveRun(ref).then(function (f) {
            if (Object.prototype.hasOwnProperty.call(seen, f.id)) {
              throw fail("'" + seen[f.id] + "' and '" + ref + "' are the same run (" + f.id.slice(0, 12) + "); name each run once");
            }
            seen[f.id] = ref;
            found.push(f.payload.run);
          });
        });
      }, Promise.resolve())
      .then(function () {
        var steps = {};
        found.forEach(function (obj) {
          var sm = obj.step_metrics || {};
          Object.keys(sm).forEach(function (name) {
            (steps[name] = steps[name] || {})[obj.id] = sm[name].map(function (pair) {
              return pair.slice();
            });
          });
        });
        var sortedSteps = {};
        natural(Object.keys(steps)).forEach(function (k) {
          sortedSteps[k] = steps[k];
        });
        return {
          runs: found.map(runRow),
          params: valueRows(
            found.map(function (o) {
              return o.params || {};
            })
          ),
          metrics: valueRows(
            found.map(function (o) {
              return o.metrics || {};
            })
          ),
          steps: sortedSteps,
        };
      });
  }

  // views.natural_key: digit runs read as numbers (p_2 before p_10)
  function naturalCompare(a, b) {
    var re = /(\d+)/;
    var pa = String(a).split(re).filter(Boolean), pb = String(b).split(re).filter(Boolean);
    for (var i = 0; i < Math.min(pa.length, pb.length); i++) {
      var da = /^\d+$/.test(pa[i]), db = /^\d+$/.test(pb[i]);
      if (da && db) {
        var x = BigInt(pa[i]), y = BigInt(pb[i]);
        if (x !== y) return x < y ? -1 : 1;
      } else if (da !== db) {
        return da ? -1 : 1;
      } else if (pa[i] !== pb[i]) {
        return W.compareText(pa[i], pb[i]);
      }
    }
    return pa.length - pb.length;
  }

  // compare.duration: seconds between two record times (microseconds kept), rounded to 6 places
  function parseTime(text) {
    if (typeof text !== "string" || !text) return null;
    var m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d{1,6}))?(Z|[+-]\d{2}:?\d{2})?$/.exec(text);
    if (!m) return null;
    var t = Date.parse(m[1] + "T" + m[2] + (m[4] === undefined || m[4] === "Z" ? "Z" : m[4]));
    if (isNaN(t)) return null;
    return { s: Math.floor(t / 1000), us: m[3] ? Number((m[3] + "000000").slice(0, 6)) : 0, naive: m[4] === undefined };
  }

  function duration(started, ended) {
    var a = parseTime(started), b = parseTime(ended);
    if (a === null || b === null || a.naive !== b.naive) return null;
    var us = (b.s - a.s) * 1e6 + (b.us - a.us);
    return Math.round(us) / 1e6;
  }

  function status(code, ended) {
    if (code === 0) return "ok";
    if ((code === null || code === undefined) && (ended === null || ended === undefined)) return "running";
    return "failed";
  }

  /* -- lineage (api.lineage over cmfgit.graph) ------------------------------------------------- */

  var graphData = null;
  function graph() {
    if (!graphData) {
      graphData = load("graph").then(function (g) {
        g.pathOf = decode(g.path);
        g.typeOf = decode(g.type);
        return g;
      });
    }
    return graphData;
  }

  // graph.py's Graph._walk over the site's graph: "e<row>" executions, "a<n>" artifacts.
  function walk(g, start, up, depth, levels) {
    var toExecs = up ? g.producers : g.consumers;
    var toArts = up ? g.inputs : g.outputs;
    var seenExecs = new Set(), seenArts = new Set();
    var arts = [];
    function note(key, level) {
      if (!levels.has(key) || level < levels.get(key)) levels.set(key, level);
    }
    function addArt(k) {
      if (!seenArts.has(k)) {
        seenArts.add(k);
        arts.push(k);
      }
    }
    start.forEach(function (node) {
      note(node, 0);
      var n = Number(node.slice(1));
      if (node.charAt(0) === "a") addArt(n);
      else if (!seenExecs.has(n)) {
        seenExecs.add(n);
        (toArts[n] || []).forEach(function (k) {
          note("a" + k, 0);
          addArt(k);
        });
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
          addArt(k);
        });
      });
    }
  }

  function canonical(g, h) {
    if (Object.prototype.hasOwnProperty.call(g.canon, h)) return g.canon[h];
    var i = keyNumber(g).get(h);
    return i === undefined ? null : i;
  }

  var keyNumbers = null;
  function keyNumber(g) {
    if (!keyNumbers) {
      keyNumbers = new Map();
      g.keys.forEach(function (k, i) {
        keyNumbers.set(k, i);
      });
    }
    return keyNumbers;
  }

  // CmfQuery._hash_prefix: every known hash (or alias) with this prefix; several artifacts: an error
  function hashPrefix(g, prefix, quiet) {
    var tests = prefix.indexOf(":") >= 0 ? [prefix] : ["blake3:" + prefix, "md5:" + prefix];
    var found = [];
    function consider(h) {
      for (var i = 0; i < tests.length; i++) if (h.lastIndexOf(tests[i], 0) === 0) return found.push(h);
    }
    g.keys.forEach(consider);
    Object.keys(g.canon).forEach(consider);
    found.sort(W.compareText);
    if (!found.length && !quiet) throw fail("no artifact matches '" + prefix + "'");
    if (found.length > 1) {
      var keys = Array.from(
        new Set(
          found.map(function (h) {
            return g.keys[canonical(g, h)];
          })
        )
      ).sort(W.compareText);
      if (keys.length > 1) {
        throw fail(
          "artifact prefix '" + prefix + "' is ambiguous: " +
            keys
              .slice(0, 5)
              .map(function (k) {
                return k.slice(0, 19);
              })
              .join(", ")
        );
      }
    }
    return found;
  }

  // CmfQuery.resolve_artifacts: a hash or prefix, else a recorded path
  function resolveArtifacts(g, ev, name) {
    var text = String(name).trim();
    var low = text.toLowerCase();
    if (/^(blake3|md5):/.test(low)) return hashPrefix(g, low, false);
    if (low.length >= 4 && isHex(low)) {
      var hits = hashPrefix(g, low, true);
      if (hits.length) return hits;
    }
    var found = new Set();
    for (var i = 0; i < ev.path.length; i++) if (ev.path[i] === text) found.add(ev.hashes[ev.hash[i]]);
    if (found.size) return Array.from(found).sort(W.compareText);
    throw fail("no artifact matches '" + name + "' (give a hash, a hash prefix or a recorded path)");
  }

  // lineage.resolve_target, without a working tree: @N, an execution id prefix, an artifact
  // hash or prefix, or a recorded path (every version recorded there).
  function resolveTarget(g, target) {
    var text = String(target).trim();
    if (!text) return Promise.reject(fail("lineage needs a target: a path, an artifact hash or an execution id"));
    function rowOf(id) {
      return column("id").then(function (col) {
        for (var r = 0; r < COUNT; r++) if (col.value(r) === id) return ["e" + r];
        throw fail("no record matches '" + id + "'");
      });
    }
    function arts(hashes) {
      return hashes.map(function (h) {
        return "a" + canonical(g, h);
      });
    }
    if (relativeRun(text)) {
      return resolveRun(text).then(function (f) {
        return rowOf(f.id);
      });
    }
    var low = text.toLowerCase();
    return events().then(function (ev) {
      if (/^(blake3|md5):/.test(low)) return arts(resolveArtifacts(g, ev, low));
      var byPath = function () {
        try {
          return arts(resolveArtifacts(g, ev, text));
        } catch (e) {
          throw fail("no artifact, path or execution matches '" + target + "'");
        }
      };
      if (low.length >= 4 && isHex(low)) {
        return resolveRun(low).then(
          function (f) {
            if (hashPrefix(g, low, true).length) {
              throw fail("'" + text + "' is both an execution id and an artifact hash prefix; give more digits");
            }
            return rowOf(f.id);
          },
          function (err) {
            if (/is ambiguous/.test(err.error)) throw err;
            var hits = hashPrefix(g, low, true);
            return hits.length ? arts(hits) : byPath();
          }
        );
      }
      return byPath();
    });
  }

  function lineage(params) {
    if (blank(params.target)) return Promise.reject(fail("missing parameter 'target'"));
    var dir = blank(params.dir) ? "up" : String(params.dir);
    var depth;
    try {
      depth = pyInt(params, "depth", null);
    } catch (e) {
      return Promise.reject(e);
    }
    if (["up", "down", "both"].indexOf(dir) < 0) return Promise.reject(fail("dir must be one of up, down, both, not '" + dir + "'"));
    if (depth !== null && depth < 0) return Promise.reject(fail("depth must be >= 0"));
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

  function pyText(v) {
    return v === null || v === undefined ? "None" : String(v);
  }

  function describe(g, roots, levels) {
    var execRows = [];
    levels.forEach(function (_l, key) {
      if (key.charAt(0) === "e") execRows.push(Number(key.slice(1)));
    });
    var cols = ["id", "pipeline", "stage", "status", "started_at", "type"];
    return valuesAt(cols, execRows).then(function (at) {
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
      var kept = keys.slice(0, MAX_NODES);
      var nodes = kept.map(function (key) {
        var n = Number(key.slice(1));
        if (key.charAt(0) === "e") {
          return {
            id: at("id", n).value,
            kind: "execution",
            label: pyText(at("pipeline", n).value) + "/" + pyText(at("stage", n).value),
            type: at("type", n).value,
            pipeline: at("pipeline", n).value,
            stage: at("stage", n).value,
            path: null,
            status: at("status", n).value,
            started_at: at("started_at", n).value,
            level: levels.get(key),
          };
        }
        var path = g.pathOf[n];
        return {
          id: g.keys[n],
          kind: "artifact",
          label: path ? path.replace(/\/+$/, "").split("/").pop() : g.keys[n].slice(0, 19),
          type: g.typeOf[n],
          pipeline: null,
          stage: null,
          path: path,
          status: null,
          started_at: null,
          level: levels.get(key),
        };
      });
      var ids = new Set(
        nodes.map(function (nd) {
          return nd.id;
        })
      );
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
      edges = edges.filter(function (e) {
        return ids.has(e.source) && ids.has(e.target);
      });
      return { roots: roots.map(idOf), nodes: nodes, edges: edges, truncated: kept.length < keys.length };
    });
  }

  /* -- artifacts (api.artifacts, api.artifact over CmfQuery.artifacts) ----------------------- */

  var eventsData = null;
  function events() {
    if (!eventsData) {
      eventsData = Promise.all([load("events"), column("started_at"), column("id")]).then(function (got) {
        var e = got[0];
        var out = { hashes: e.hashes, aliases: e.aliases || {}, tags: e.tags || {}, started: got[1], ids: got[2] };
        ["row", "dir", "hash", "path", "type", "kind", "size"].forEach(function (k) {
          out[k] = decode(e[k]);
        });
        // event order of CmfQuery._artifact_objects: by start time (none first), then id = rows backwards
        var order = range(out.row.length);
        order.sort(function (a, b) {
          return out.row[b] - out.row[a] || a - b;
        });
        out.order = order;
        var byHash = new Map();
        order.forEach(function (i) {
          var h = out.hash[i];
          if (!byHash.has(h)) byHash.set(h, []);
          byHash.get(h).push(i);
        });
        out.byHash = byHash;
        return out;
      });
    }
    return eventsData;
  }

  // One artifact object of CmfQuery._artifact_objects, from all of its events.
  function artObject(ev, h) {
    var o = { hash: ev.hashes[h], type: null, kind: null, size: null, paths: [], producers: [], consumers: [], first_seen: null, last_seen: null };
    var idx = ev.byHash.get(h) || [];
    idx.forEach(function (i, n) {
      var started = ev.started.value(ev.row[i]);
      if (n === 0) o.first_seen = started;
      o.type = ev.type[i];
      o.kind = ev.kind[i];
      o.last_seen = started;
      if (ev.size[i] !== null) o.size = ev.size[i];
      var p = ev.path[i];
      if (p && o.paths.indexOf(p) < 0) o.paths.push(p);
      var id = ev.ids.value(ev.row[i]);
      var list = ev.dir[i] === 1 ? o.producers : o.consumers;
      if (list.indexOf(id) < 0) list.push(id);
    });
    o.aliases = (ev.aliases[h] || []).slice();
    o.tags = Object.assign({}, ev.tags[h] || {});
    return o;
  }

  // The hashes with an event matching `test`, most recently used (by those events) first, then by hash.
  function rankedHashes(ev, test) {
    var newest = new Map();
    for (var i = 0; i < ev.row.length; i++) {
      if (!test(i)) continue;
      var h = ev.hash[i];
      var t = ev.started.value(ev.row[i]);
      if (!newest.has(h)) newest.set(h, t);
      else {
        var old = newest.get(h);
        if (t !== null && (old === null || W.compareText(t, old) > 0)) newest.set(h, t);
      }
    }
    return Array.from(newest.keys()).sort(function (a, b) {
      var x = newest.get(a), y = newest.get(b);
      if (x !== y) {
        if (x === null) return 1;
        if (y === null) return -1;
        var c = W.compareText(y, x);
        if (c) return c;
      }
      return W.compareText(ev.hashes[a], ev.hashes[b]);
    });
  }

  function artifactRow(o) {
    return {
      hash: o.hash,
      path: o.paths.length ? o.paths[0] : null,
      paths: o.paths,
      type: o.type,
      size: o.size,
      last_used: o.last_seen,
      uses: o.producers.length + o.consumers.length,
    };
  }

  function artifacts(params) {
    var offset, limit;
    try {
      offset = pyInt(params, "offset", 0) || 0;
      limit = pyInt(params, "limit", DEFAULT_LIMIT) || 0;
      if (offset < 0) throw fail("offset must be >= 0");
      if (!(limit >= 0 && limit <= MAX_LIMIT)) throw fail("limit must be between 0 and " + MAX_LIMIT);
    } catch (e) {
      return Promise.reject(e);
    }
    var type = params.type ? String(params.type) : null;
    var path = params.path ? String(params.path) : null;
    return events().then(function (ev) {
      var types = new Set();
      ev.type.forEach(function (t) {
        if (t !== null) types.add(t);
      });
      var ofType = function (i) {
        return type === null || ev.type[i] === type;
      };
      var total, picked;
      if (path) {
        var wanted = new Set();
        for (var i = 0; i < ev.row.length; i++) {
          if (ev.path[i] !== null && ev.path[i].indexOf(path) >= 0 && ofType(i)) wanted.add(ev.hash[i]);
        }
        var matching = function (j) {
          return ev.path[j] !== null && ev.path[j].indexOf(path) >= 0 && ofType(j);
        };
        var found = wanted.size ? rankedHashes(ev, matching) : [];
        total = found.length;
        var page = new Set(found.slice(offset, offset + limit));
        // (api: that page of hashes, then listed by CmfQuery.artifacts' own order)
        picked = page.size
          ? rankedHashes(ev, function (j) {
              return page.has(ev.hash[j]) && ofType(j);
            })
          : [];
      } else {
        var all = rankedHashes(ev, ofType);
        total = all.length;
        picked = limit ? all.slice(offset, offset + limit) : [];
      }
      return {
        total: total,
        offset: offset,
        limit: limit,
        types: natural(Array.from(types)),
        rows: picked.map(function (h) {
          return artifactRow(artObject(ev, h));
        }),
      };
    });
  }

  var MAX_VERSIONS = 500;
  var MAX_USES = 1000;

  function artifact(params) {
    if (blank(params.hash)) return Promise.reject(fail("missing parameter 'hash'"));
    var name = String(params.hash);
    return Promise.all([events(), graph()]).then(function (got) {
      var ev = got[0], g = got[1];
      var number = new Map();
      ev.hashes.forEach(function (h, i) {
        number.set(h, i);
      });
      var wanted = new Set();
      resolveArtifacts(g, ev, name).forEach(function (h) {
        if (number.has(h)) wanted.add(number.get(h));
      });
      var found = rankedHashes(ev, function (i) {
        return wanted.has(ev.hash[i]);
      });
      if (!found.length) throw fail("no artifact matches '" + name + "'");
      var main = artObject(ev, found[0]);
      var paths = new Set(main.paths);
      // versions: every artifact recorded at one of its paths (api.artifact's GROUP BY)
      var byArt = new Map();
      for (var i = 0; i < ev.row.length; i++) {
        if (ev.path[i] === null || !paths.has(ev.path[i])) continue;
        var h = ev.hash[i];
        var v = byArt.get(h);
        if (!v) byArt.set(h, (v = { hash: ev.hashes[h], size: null, first_seen: null, produced_by: null, path: null }));
        var t = ev.started.value(ev.row[i]);
        if (t !== null && (v.first_seen === null || W.compareText(t, v.first_seen) < 0)) v.first_seen = t;
        if (ev.size[i] !== null && (v.size === null || ev.size[i] > v.size)) v.size = ev.size[i];
        if (v.path === null || W.compareText(ev.path[i], v.path) < 0) v.path = ev.path[i];
      }
      var versions = [];
      byArt.forEach(function (v, h) {
        // the first run that wrote it: by start time (none first), then id = the last row
        var idx = ev.byHash.get(h) || [];
        for (var k = 0; k < idx.length; k++) {
          if (ev.dir[idx[k]] === 1) {
            v.produced_by = ev.ids.value(ev.row[idx[k]]);
            break;
          }
        }
        versions.push(v);
      });
      versions.sort(function (a, b) {
        if (a.first_seen !== b.first_seen) {
          if (a.first_seen === null) return 1;
          if (b.first_seen === null) return -1;
          var c = W.compareText(b.first_seen, a.first_seen);
          if (c) return c;
        }
        return W.compareText(a.hash, b.hash);
      });
      // used_by: every event of the hash or its aliases, newest first
      var names = new Set([main.hash].concat(main.aliases));
      var uses = [];
      for (var j = 0; j < ev.row.length; j++) if (names.has(ev.hashes[ev.hash[j]])) uses.push(j);
      uses.sort(function (a, b) {
        return ev.row[a] - ev.row[b] || ev.dir[b] - ev.dir[a];
      });
      var shown = uses.slice(0, MAX_USES);
      return valuesAt(
        ["id", "pipeline", "stage", "started_at", "status"],
        shown.map(function (j) {
          return ev.row[j];
        })
      ).then(function (at) {
        return {
          artifact: {
            hash: main.hash,
            path: main.paths.length ? main.paths[0] : null,
            paths: main.paths,
            type: main.type,
            size: main.size,
            aliases: main.aliases,
            tags: main.tags,
          },
          versions: versions.slice(0, MAX_VERSIONS),
          versions_total: versions.length,
          used_by: shown.map(function (j) {
            var r = ev.row[j];
            return {
              execution: at("id", r).value,
              pipeline: at("pipeline", r).value,
              stage: at("stage", r).value,
              role: ev.dir[j] === 1 ? "output" : "input",
              started_at: at("started_at", r).value,
              status: at("status", r).value,
            };
          }),
          used_total: uses.length,
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
  if (cfg.mode === "static") window.CMF.source = { get: get, mode: "static" };
})();
