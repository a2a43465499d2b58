/* The server's data source (cmfgit ui): CMF.source.get(endpoint, params) -> Promise<JSON>,
 * a GET of api/<endpoint>?<params>, relative to the page. An answer that is not 2xx rejects
 * with the server's JSON error, {error: "one-line message", where: {text, pos} | null}.
 *
 * Loaded after source-static.js: in server mode (or with no config at all) this one wins.
 */
(function () {
  "use strict";
  var CMF = (window.CMF = window.CMF || {});
  var cfg = window.CMF_CONFIG || { mode: "server" };

  function get(endpoint, params) {
    var qs = new URLSearchParams();
    Object.keys(params || {}).forEach(function (k) {
      var v = params[k];
      if (v !== null && v !== undefined && v !== "") qs.set(k, String(v));
    });
    var text = qs.toString();
    var url = "api/" + encodeURIComponent(endpoint) + (text ? "?" + text : "");
    return fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" }).then(
      function (resp) {
        return resp.text().then(function (body) {
          var data;
          try {
            data = JSON.parse(body);
          } catch (e) {
            data = { error: "the server answered " + resp.status + " with no JSON", where: null };
          }
          if (!resp.ok) {
            if (!data || typeof data.error !== "string") data = { error: "HTTP " + resp.status, where: null };
            throw data;
          }
          return data;
        });
      },
      function () {
        throw { error: "cannot reach the cmfgit ui server (is it still running?)", where: null };
      }
    );
  }

  if (cfg.mode !== "static") CMF.source = { get: get, mode: "server" };
})();
