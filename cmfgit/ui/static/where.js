/* The --where expression language in the browser: a port of cmfgit/where.py.
 *
 * Same grammar, same error messages, same caret position (columns count code points, as
 * Python does), and the same answers as the SQL CmfQuery runs over the index:
 * a comparison with a missing key is false (not makes it true), numbers compare with
 * numbers and text with text (text in UTF-8 byte order, as SQLite), true/false are 1/0,
 * == null means missing or null, ~ is SQLite's GLOB (a number is matched as SQLite
 * writes it as text). Also here: difflib.get_close_matches (the did-you-mean hints) and
 * the order of SQLite's ORDER BY (numbers before text).
 *
 * window.CMF_WHERE = {parse, WhereError, fields, conjuncts, compile, compareValues,
 *                     closeMatches, sortKey, CORE_FIELDS}
 */
(function () {
  "use strict";

  var CORE_FIELDS = {
    pipeline: ["pipeline", "text"],
    stage: ["stage", "text"],
    type: ["type", "text"],
    site: ["site", "text"],
    host: ["host", "text"],
    user: ["user", "text"],
    exit_code: ["exit_code", "int"],
    started_at: ["started_at", "time"],
    ended_at: ["ended_at", "time"],
    time: ["started_at", "time"],
    duration: ["duration", "num"], // seconds, the site's duration column (compare.duration)
    id: ["id", "text"],
    uuid: ["uuid", "text"],
    commit: ["commit", "text"],
    "git.commit": ["commit", "text"],
    branch: ["branch", "text"],
    "git.branch": ["branch", "text"],
  };
  var NAMESPACES = ["params", "metrics", "tags"];
  var KEYWORDS = ["and", "or", "not", "in", "true", "false", "null"];
  var MAX_NESTING = 30;
  var MAX_TERMS = 300;
  var BIG = 1.7976931348623157e308;

  /* -- code points ------------------------------------------------------------------- */

  function cpIndex(text, unit) {
    // The code point index of a UTF-16 offset (Python counts code points).
    var n = 0;
    for (var i = 0; i < unit && i < text.length; i++) {
      var c = text.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
        var d = text.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) i++;
      }
      n++;
    }
    return n + Math.max(0, unit - text.length);
  }

  function WhereError(text, unit, message) {
    var pos = cpIndex(text, unit);
    this.name = "WhereError";
    this.text = text;
    this.pos = pos;
    this.message = message;
    this.full = "--where: " + message + " at column " + (pos + 1) + "\n  " + text + "\n" + " ".repeat(pos + 2) + "^";
  }
  WhereError.prototype = Object.create(Error.prototype);
  WhereError.prototype.constructor = WhereError;

  function pyRepr(ch) {
    // Python's repr() of a one-character string.
    if (ch === "'") return "\"'\"";
    if (ch === "\\") return "'\\\\'";
    if (ch === "\n") return "'\\n'";
    if (ch === "\r") return "'\\r'";
    if (ch === "\t") return "'\\t'";
    var cp = ch.codePointAt(0);
    var hidden = /^[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]$/u.test(ch) && ch !== " ";
    if (!hidden) return "'" + ch + "'";
    var hex = cp.toString(16);
    if (cp < 0x100) return "'\\x" + hex.padStart(2, "0") + "'";
    if (cp < 0x10000) return "'\\u" + hex.padStart(4, "0") + "'";
    return "'\\U" + hex.padStart(8, "0") + "'";
  }

  /* -- tokens (the regular expression of where.py, with Python's Unicode classes) ------ */

  var SPACE = "[\\t\\n\\v\\f\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
  var DIGIT = "\\p{Nd}";
  var WORD = "[\\p{L}\\p{N}_]";
  var TOKEN = new RegExp(
    "(" + SPACE + "+)" +
      "|([-+]?(?:" + DIGIT + "+\\.?" + DIGIT + "*|\\." + DIGIT + "+)(?:[eE][-+]?" + DIGIT + "+)?(?!" + WORD + "|\\.))" +
      "|(\"(?:[^\"\\\\]|\\\\[^\\n])*\"|'(?:[^'\\\\]|\\\\[^\\n])*')" +
      "|(==|!=|<=|>=|=|<|>|~)" +
      "|([()\\[\\],])" +
      "|([A-Za-z_](?:" + WORD + "|[.\\-/:])*)",
    "uy"
  );
  var KINDS = ["space", "number", "string", "op", "punct", "name"];
  var ESCAPES = { n: "\n", t: "\t", "\\": "\\", '"': '"', "'": "'" };

  function asciiDigits(raw) {
    // Python's int()/float() read any Unicode decimal digit.
    return raw.replace(/\p{Nd}/gu, function (d) {
      var cp = d.codePointAt(0);
      var start = cp;
      while (start > 0 && /^\p{Nd}$/u.test(String.fromCodePoint(start - 1))) start--;
      return String((cp - start) % 10);
    });
  }

  function tokenize(text) {
    var tokens = [];
    var pos = 0;
    while (pos < text.length) {
      TOKEN.lastIndex = pos;
      var m = TOKEN.exec(text);
      if (m === null) {
        var ch = String.fromCodePoint(text.codePointAt(pos));
        if (ch === '"' || ch === "'") throw new WhereError(text, pos, "unterminated string");
        throw new WhereError(text, pos, "unexpected character " + pyRepr(ch));
      }
      var kind = "";
      for (var g = 1; g <= 6; g++) if (m[g] !== undefined) kind = KINDS[g - 1];
      var raw = m[0];
      if (kind === "number") {
        var plain = asciiDigits(raw);
        var isFloat = /[.eE]/.test(plain);
        tokens.push({ kind: kind, text: raw, value: Number(plain), isFloat: isFloat, pos: pos });
      } else if (kind === "string") {
        tokens.push({ kind: kind, text: raw, value: unquote(text, raw, pos), pos: pos });
      } else if (kind === "name" && KEYWORDS.indexOf(raw.toLowerCase()) >= 0) {
        tokens.push({ kind: "keyword", text: raw, value: raw.toLowerCase(), pos: pos });
      } else if (kind !== "space") {
        tokens.push({ kind: kind, text: raw, value: raw === "=" ? "==" : raw, pos: pos });
      }
      pos += raw.length;
    }
    tokens.push({ kind: "end", text: "", value: null, pos: text.length });
    return tokens;
  }

  function unquote(text, raw, pos) {
    var out = "";
    var i = 1;
    while (i < raw.length - 1) {
      var c = raw[i];
      if (c === "\\") {
        var nxt = String.fromCodePoint(raw.codePointAt(i + 1));
        if (!Object.prototype.hasOwnProperty.call(ESCAPES, nxt)) {
          throw new WhereError(text, pos + i, "unknown escape '\\" + nxt + "' in a string");
        }
        out += ESCAPES[nxt];
        i += 2;
      } else {
        out += c;
        i += 1;
      }
    }
    return out;
  }

  /* -- parsing ------------------------------------------------------------------------- */

  function fieldName(f) {
    return f.ns ? f.ns + "." + f.name : f.name;
  }

  function Parser(text) {
    this.text = text;
    this.tokens = tokenize(text);
    this.i = 0;
    this.depth = 0;
    this.terms = 0;
  }
  Parser.prototype.tok = function () {
    return this.tokens[this.i];
  };
  Parser.prototype.take = function () {
    return this.tokens[this.i++];
  };
  Parser.prototype.isKw = function (word) {
    var t = this.tok();
    return t.kind === "keyword" && t.value === word;
  };
  Parser.prototype.isPunct = function (p) {
    var t = this.tok();
    return t.kind === "punct" && t.text === p;
  };
  Parser.prototype.fail = function (message, tok) {
    return new WhereError(this.text, (tok || this.tok()).pos, message);
  };
  Parser.prototype.describe = function (tok) {
    return tok.kind === "end" ? "the end of the expression" : "'" + tok.text + "'";
  };
  Parser.prototype.parse = function () {
    if (this.tok().kind === "end") throw this.fail("empty expression");
    var node = this.orExpr();
    var t = this.tok();
    if (t.kind !== "end") {
      if (t.kind === "name" || t.kind === "string" || t.kind === "number") {
        throw this.fail("expected 'and', 'or' or ')' before " + this.describe(t));
      }
      throw this.fail("unexpected " + this.describe(t));
    }
    return node;
  };
  Parser.prototype.orExpr = function () {
    var node = this.andExpr();
    while (this.isKw("or")) {
      this.take();
      node = { type: "or", left: node, right: this.andExpr() };
    }
    return node;
  };
  Parser.prototype.andExpr = function () {
    var node = this.notExpr();
    while (this.isKw("and")) {
      this.take();
      node = { type: "and", left: node, right: this.notExpr() };
    }
    return node;
  };
  Parser.prototype.notExpr = function () {
    if (!(this.isKw("not") || this.isPunct("("))) {
      this.terms += 1;
      if (this.terms > MAX_TERMS) throw this.fail("more than " + MAX_TERMS + " comparisons");
      return this.comparison();
    }
    this.depth += 1;
    if (this.depth > MAX_NESTING) throw this.fail("nested more than " + MAX_NESTING + " deep");
    try {
      return this.nested();
    } finally {
      this.depth -= 1;
    }
  };
  Parser.prototype.nested = function () {
    if (this.isKw("not")) {
      this.take();
      return { type: "not", operand: this.notExpr() };
    }
    var opening = this.take();
    var node = this.orExpr();
    if (!this.isPunct(")")) {
      if (this.tok().kind === "end") throw this.fail("missing ')' for this '('", opening);
      throw this.fail("expected ')' but found " + this.describe(this.tok()));
    }
    this.take();
    return node;
  };
  Parser.prototype.field = function () {
    var tok = this.tok();
    if (tok.kind !== "name") {
      throw this.fail("expected a field such as params.lr or stage, found " + this.describe(tok));
    }
    this.take();
    var name = tok.text;
    if (NAMESPACES.indexOf(name) >= 0 && this.isPunct("[")) {
      this.take();
      var quoted = this.take();
      if (quoted.kind !== "string") throw this.fail("expected a quoted key inside [ ]", quoted);
      if (!this.isPunct("]")) throw this.fail("expected ']'");
      this.take();
      return { ns: name, name: quoted.value, pos: tok.pos };
    }
    var dot = name.indexOf(".");
    var ns = dot < 0 ? name : name.slice(0, dot);
    var key = dot < 0 ? "" : name.slice(dot + 1);
    if (NAMESPACES.indexOf(ns) >= 0) {
      if (!key) throw new WhereError(this.text, tok.pos, "'" + name + "' needs a key, e.g. " + ns + ".lr");
      return { ns: ns, name: key, pos: tok.pos };
    }
    if (!Object.prototype.hasOwnProperty.call(CORE_FIELDS, name)) {
      throw new WhereError(this.text, tok.pos, "unknown field '" + name + "'" + suggest(name));
    }
    return { ns: "", name: name, pos: tok.pos };
  };
  Parser.prototype.comparison = function () {
    var field = this.field();
    var op = this.tok();
    if (op.kind === "keyword" && op.value === "in") {
      this.take();
      return { type: "compare", field: field, op: "in", value: this.valueList(), pos: op.pos };
    }
    if (op.kind !== "op") {
      throw this.fail("expected a comparison (==, !=, <, <=, >, >=, in, ~) after '" + fieldName(field) + "'");
    }
    this.take();
    var value = this.value(op.text);
    if (op.value === "~" && typeof value.v !== "string") {
      throw this.fail("'~' needs a quoted glob pattern", this.tokens[this.i - 1]);
    }
    var node = { type: "compare", field: field, op: op.value, value: value, pos: op.pos };
    checkTypes(this.text, node, this.tokens[this.i - 1]);
    return node;
  };
  // A literal: {v: value, real: a float written as an integral number (1.0), bool: true/false}
  Parser.prototype.value = function (after) {
    var tok = this.tok();
    if (tok.kind === "number") {
      this.take();
      return { v: tok.value, real: tok.isFloat };
    }
    if (tok.kind === "string") {
      this.take();
      return { v: tok.value };
    }
    if (tok.kind === "keyword" && (tok.value === "true" || tok.value === "false" || tok.value === "null")) {
      this.take();
      if (tok.value === "null") return { v: null };
      return { v: tok.value === "true" ? 1 : 0, bool: true };
    }
    if (tok.kind === "name") {
      throw this.fail("expected a value after '" + after + "'; quote text: \"" + tok.text + "\"");
    }
    throw this.fail("expected a value after '" + after + "', found " + this.describe(tok));
  };
  Parser.prototype.valueList = function () {
    if (!this.isPunct("(")) throw this.fail("expected '(' after 'in'");
    this.take();
    var values = [this.value("(")];
    while (this.isPunct(",")) {
      this.take();
      values.push(this.value(","));
    }
    if (!this.isPunct(")")) {
      throw this.fail("expected ',' or ')' in the list, found " + this.describe(this.tok()));
    }
    this.take();
    for (var i = 0; i < values.length; i++) {
      if (values[i].v === null) throw this.fail("null cannot be in a list; use '== null'");
    }
    return values;
  };

  function suggest(name) {
    var core = Object.keys(CORE_FIELDS);
    var close = closeMatches(name, core.concat(["params", "metrics"]), 1);
    if (close.length) {
      var hint = close[0] + (NAMESPACES.indexOf(close[0]) >= 0 ? "." : "");
      return " (did you mean '" + hint + "'?)";
    }
    return " (fields: " + core.concat(["params.<key>", "metrics.<key>"]).join(", ") + ")";
  }

  function checkTypes(text, node, valueTok) {
    var values = node.op === "in" ? node.value : [node.value];
    var hasNull = values.some(function (x) {
      return x.v === null;
    });
    if (hasNull && node.op !== "==" && node.op !== "!=") {
      throw new WhereError(text, node.pos, "null only compares with == or !=");
    }
    if (node.field.ns) return;
    var kind = CORE_FIELDS[node.field.name][1];
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (v.v === null) continue;
      var numeric = typeof v.v === "number" && !v.bool;
      if ((kind === "int" || kind === "num") && !numeric) {
        throw new WhereError(text, valueTok.pos, "'" + fieldName(node.field) + "' is a number; compare it with a number");
      }
      if ((kind === "text" || kind === "time") && typeof v.v !== "string") {
        throw new WhereError(text, valueTok.pos, "'" + fieldName(node.field) + "' is text; quote the value");
      }
    }
  }

  function parse(text) {
    return new Parser(text).parse();
  }

  function fields(node) {
    if (node.type === "compare") return [node.field];
    if (node.type === "not") return fields(node.operand);
    return fields(node.left).concat(fields(node.right));
  }

  function conjuncts(node) {
    if (node.type === "and") return conjuncts(node.left).concat(conjuncts(node.right));
    return [node];
  }

  /* -- difflib.get_close_matches -------------------------------------------------------- */

  function matchingTotal(a, b) {
    // sum of SequenceMatcher(None, a, b).get_matching_blocks() sizes (no junk: short sequences)
    var b2j = new Map();
    for (var j = 0; j < b.length; j++) {
      var list = b2j.get(b[j]);
      if (!list) b2j.set(b[j], (list = []));
      list.push(j);
    }
    if (b.length >= 200) {
      var ntest = Math.floor(b.length / 100) + 1;
      b2j.forEach(function (idx, elt) {
        if (idx.length > ntest) b2j.delete(elt);
      });
    }
    function longest(alo, ahi, blo, bhi) {
      var besti = alo, bestj = blo, bestsize = 0;
      var j2len = new Map();
      for (var i = alo; i < ahi; i++) {
        var newj2len = new Map();
        var idx = b2j.get(a[i]) || [];
        for (var k = 0; k < idx.length; k++) {
          var jj = idx[k];
          if (jj < blo) continue;
          if (jj >= bhi) break;
          var size = (j2len.get(jj - 1) || 0) + 1;
          newj2len.set(jj, size);
          if (size > bestsize) {
            besti = i - size + 1;
            bestj = jj - size + 1;
            bestsize = size;
          }
        }
        j2len = newj2len;
      }
      return [besti, bestj, bestsize];
    }
    var total = 0;
    var queue = [[0, a.length, 0, b.length]];
    while (queue.length) {
      var q = queue.pop();
      var m = longest(q[0], q[1], q[2], q[3]);
      var k2 = m[2];
      if (k2) {
        total += k2;
        if (q[0] < m[0] && q[2] < m[1]) queue.push([q[0], m[0], q[2], m[1]]);
        if (m[0] + k2 < q[1] && m[1] + k2 < q[3]) queue.push([m[0] + k2, q[1], m[1] + k2, q[3]]);
      }
    }
    return total;
  }

  function pyLess(a, b) {
    return compareText(a, b) < 0;
  }

  function closeMatches(word, possibilities, n) {
    var w = Array.from(word);
    var result = [];
    for (var i = 0; i < possibilities.length; i++) {
      var x = Array.from(possibilities[i]);
      var total = w.length + x.length;
      if (!total) continue;
      var ratio = (2.0 * matchingTotal(x, w)) / total;
      if (ratio >= 0.6) result.push([ratio, possibilities[i]]);
    }
    result.sort(function (p, q) {
      if (p[0] !== q[0]) return q[0] - p[0];
      return pyLess(p[1], q[1]) ? 1 : pyLess(q[1], p[1]) ? -1 : 0;
    });
    return result.slice(0, n).map(function (p) {
      return p[1];
    });
  }

  /* -- SQLite's values ------------------------------------------------------------------- */

  function compareText(a, b) {
    // SQLite's BINARY collation (UTF-8 bytes) = code point order; JS compares UTF-16 units.
    if (a === b) return 0;
    var n = Math.min(a.length, b.length);
    for (var i = 0; i < n; i++) {
      var x = a.charCodeAt(i), y = b.charCodeAt(i);
      if (x !== y) {
        var xs = x >= 0xd800 && x <= 0xdfff, ys = y >= 0xd800 && y <= 0xdfff;
        if (xs !== ys) return xs ? 1 : -1; // a surrogate (>= U+10000) sorts after any BMP char
        return x < y ? -1 : 1;
      }
    }
    return a.length - b.length;
  }

  function compareValues(a, b) {
    // ORDER BY: numbers (by value) before text (by bytes); both non-null.
    var an = typeof a === "number", bn = typeof b === "number";
    if (an && bn) return a < b ? -1 : a > b ? 1 : 0;
    if (an !== bn) return an ? -1 : 1;
    return compareText(a, b);
  }

  var buf = new DataView(new ArrayBuffer(8));
  function nextAfter(x, up) {
    if (x === 0) return up ? 5e-324 : -5e-324;
    buf.setFloat64(0, x);
    var bits = buf.getBigInt64(0);
    bits += (x > 0) === up ? 1n : -1n;
    buf.setBigInt64(0, bits);
    return buf.getFloat64(0);
  }

  function realText(x) {
    // SQLite's text of a REAL: printf("%!.15g"): 15 significant digits, at least one after the point
    if (x === 0) return "0.0";
    var parts = x.toExponential(14).split("e");
    var exp = Number(parts[1]);
    if (exp < -4 || exp >= 15) {
      var mant = parts[0].replace(/0+$/, "").replace(/\.$/, ".0");
      if (mant.indexOf(".") < 0) mant += ".0";
      return mant + "e" + (exp < 0 ? "-" : "+") + String(Math.abs(exp)).padStart(2, "0");
    }
    var fixed = x.toFixed(Math.max(0, 14 - exp));
    if (fixed.indexOf(".") >= 0) fixed = fixed.replace(/0+$/, "").replace(/\.$/, ".0");
    else fixed += ".0";
    return fixed;
  }

  function globMatch(pattern, text) {
    // SQLite's GLOB: * ? [...] [^...], case-sensitive, the whole string.
    var p = Array.from(pattern), s = Array.from(text);
    function match(pi, si) {
      while (pi < p.length) {
        var c = p[pi++];
        if (c === "*") {
          while (pi < p.length && (p[pi] === "*" || p[pi] === "?")) {
            if (p[pi] === "?") {
              if (si >= s.length) return false;
              si++;
            }
            pi++;
          }
          if (pi === p.length) return true;
          for (; si <= s.length; si++) if (match(pi, si)) return true;
          return false;
        }
        if (c === "?") {
          if (si >= s.length) return false;
          si++;
          continue;
        }
        if (c === "[") {
          if (si >= s.length) return false;
          var ch = s[si++];
          var invert = false, seen = false, prior = null;
          var c2 = p[pi++];
          if (c2 === "^") {
            invert = true;
            c2 = p[pi++];
          }
          if (c2 === "]") {
            if (ch === "]") seen = true;
            c2 = p[pi++];
          }
          while (c2 !== undefined && c2 !== "]") {
            if (c2 === "-" && p[pi] !== "]" && p[pi] !== undefined && prior !== null) {
              c2 = p[pi++];
              var cp = ch.codePointAt(0);
              if (cp >= prior.codePointAt(0) && cp <= c2.codePointAt(0)) seen = true;
              prior = null;
            } else {
              if (ch === c2) seen = true;
              prior = c2;
            }
            c2 = p[pi++];
          }
          if (c2 === undefined || seen === invert) return false;
          continue;
        }
        if (si >= s.length || s[si] !== c) return false;
        si++;
      }
      return si === s.length;
    }
    return match(0, 0);
  }

  /* -- evaluation ------------------------------------------------------------------------ */

  // compile(node, get) -> function(row) -> bool, where get(field) returns an accessor
  // {value(row) -> number|string|null, real(row) -> bool (an integral number stored as REAL)}.
  function compile(node, get) {
    if (node.type === "not") {
      var inner = compile(node.operand, get);
      return function (r) {
        return !inner(r);
      };
    }
    if (node.type === "and" || node.type === "or") {
      var l = compile(node.left, get), rt = compile(node.right, get);
      return node.type === "and"
        ? function (r) {
            return l(r) && rt(r);
          }
        : function (r) {
            return l(r) || rt(r);
          };
    }
    var col = get(node.field);
    var value = col.value;
    var op = node.op;
    if (op === "in") {
      var wanted = node.value.map(function (x) {
        return x.v;
      });
      return function (r) {
        var x = value(r);
        if (x === null || x === undefined) return false;
        for (var i = 0; i < wanted.length; i++) if (x === wanted[i]) return true;
        return false;
      };
    }
    var v = node.value.v;
    if (v === null) {
      return op === "=="
        ? function (r) {
            var x = value(r);
            return x === null || x === undefined;
          }
        : function (r) {
            var x = value(r);
            return x !== null && x !== undefined;
          };
    }
    if (op === "~") {
      var real = col.real;
      return function (r) {
        var x = value(r);
        if (x === null || x === undefined) return false;
        if (typeof x === "number") x = Number.isInteger(x) && !(real && real(r)) ? String(x) : realText(x);
        return globMatch(v, x);
      };
    }
    if (op === "==") {
      return function (r) {
        return value(r) === v;
      };
    }
    if (op === "!=") {
      return function (r) {
        var x = value(r);
        return x !== null && x !== undefined && x !== v;
      };
    }
    if (typeof v === "string") {
      var strict = op === "<" || op === ">";
      var below = op === "<" || op === "<=";
      return function (r) {
        var x = value(r);
        if (typeof x !== "string") return false;
        var c = compareText(x, v);
        if (strict && c === 0) return false;
        return below ? c <= 0 : c >= 0;
      };
    }
    var low, high;
    if (op === "<") {
      low = -BIG;
      high = nextAfter(v, false);
    } else if (op === "<=") {
      low = -BIG;
      high = v;
    } else if (op === ">") {
      low = nextAfter(v, true);
      high = BIG;
    } else {
      low = v;
      high = BIG;
    }
    return function (r) {
      var x = value(r);
      return typeof x === "number" && x >= low && x <= high;
    };
  }

  function sortKey(text) {
    // cmfgit.query._sort_key: {field, descending}; throws {message} as CmfQuery raises UsageError
    var spec = String(text).trim();
    var descending = spec.charAt(0) === "-";
    var name = spec.replace(/^[-+]+/, "").trim();
    if (!name) throw { usage: true, message: "--sort needs a field, e.g. --sort -metrics.acc" };
    try {
      var node = parse(name + " == 0");
      return { field: node.field, descending: descending };
    } catch (e) {
      if (!(e instanceof WhereError)) throw e;
      if (e.message.indexOf("is text") >= 0 || e.message.indexOf("is a number") >= 0) {
        return { field: { ns: "", name: name, pos: 0 }, descending: descending };
      }
      throw { usage: true, message: "--sort: " + e.message.split(" at column")[0] };
    }
  }

  window.CMF_WHERE = {
    parse: parse,
    WhereError: WhereError,
    fields: fields,
    conjuncts: conjuncts,
    compile: compile,
    compareValues: compareValues,
    compareText: compareText,
    closeMatches: closeMatches,
    sortKey: sortKey,
    globMatch: globMatch,
    realText: realText,
    fieldName: fieldName,
    CORE_FIELDS: CORE_FIELDS,
  };
})();
