"""`cmfgit export --format openlineage | prov-json | prov-n` on real repos: the demo's
pipeline, an imported CMF history (set3) and hand-made runs (a failure, a remote with
credentials). Every OpenLineage event and facet is checked against the vendored
OpenLineage 2-0-2 JSON schemas; PROV is read back with the prov package."""

from __future__ import annotations

import io
import json
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import prov
import prov.model as pm
import pytest
from conftest import ROOT, cmfgit, git, make_repo
from referencing import Registry, Resource

from cmfgit.exporters import openlineage as ol

SPEC = ROOT / "tests" / "fixtures" / "openlineage-spec"
SET3_MLMD = ROOT / "tests" / "fixtures" / "cmf-set3" / "mlmd"


# -- the spec check -------------------------------------------------------------------


def _registry() -> Registry:
    resources = []
    for path in [SPEC / "OpenLineage.json", *sorted((SPEC / "facets").glob("*.json"))]:
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    for name in ol.CUSTOM_FACETS:
        schema = ol.custom_schema(name)
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


REGISTRY = _registry()
FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("uuid", raises=ValueError)
def _is_uuid(value: object) -> bool:
    return not isinstance(value, str) or str(uuid.UUID(value)) == value


@FORMATS.checks("uri", raises=ValueError)
def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or (":" in value and " " not in value and value.split(":")[0].isascii())


def _validator(ref: str) -> jsonschema.protocols.Validator:
    return jsonschema.Draft202012Validator({"$ref": ref}, registry=REGISTRY, format_checker=FORMATS)


EVENT = _validator(ol.EVENT_SCHEMA_URL)


def check_event(event: dict[str, Any]) -> None:
    """The event against the RunEvent schema, and every facet against its own ``_schemaURL``."""
    EVENT.validate(event)
    facets = [event["run"].get("facets", {}), event["job"].get("facets", {})]
    facets += [d.get("facets", {}) for d in event["inputs"] + event["outputs"]]
    for group in facets:
        for key, facet in group.items():
            expected = ol.SPEC_FACETS.get(key) or ol.custom_schema(key)["$id"]
            assert facet["_schemaURL"] == expected, key
            assert facet["_producer"] == ol.PRODUCER
            _validator(facet["_schemaURL"]).validate(facet)
    # a custom facet's fields are all of its schema's (the schema forbids others)
    assert {k for g in facets for k in g if k.startswith("cmfgit_")} <= set(ol.CUSTOM_FACETS)


def test_the_spec_check_catches_a_bad_event() -> None:
    good = next(ol.events([_record("a" * 64)]))
    check_event(good)
    for broken in (
        {**good, "eventType": "DONE"},
        {**good, "run": {"runId": "not-a-uuid"}},
        {k: v for k, v in good.items() if k != "eventTime"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            check_event(broken)
    bad_facet = json.loads(json.dumps(good))
    del bad_facet["run"]["facets"]["processing_engine"]["version"]
    with pytest.raises(jsonschema.ValidationError):
        check_event(bad_facet)


def _record(rid: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": rid,
        "schema": "cmfgit/execution/1",
        "uuid": "u",
        "pipeline": "p",
        "stage": "s",
        "type": "s",
        "command": ["python", "s.py"],
        "params": {"lr": 0.1, "name": "x", "nan": float("nan")},
        "metrics": {"acc": float("inf")},
        "started_at": "2026-01-01T00:00:00.000000Z",
        "ended_at": "2026-01-01T00:00:01.000000Z",
        "exit_code": 0,
        "site": "lab",
        "host": "h",
        "user": "ana",
        "git": {"remote": "git@example.com:org/repo.git", "commit": "c" * 40, "branch": "main"},
        "env": {"python": "3.11", "vars": {"OMP_NUM_THREADS": "4"}},
        "inputs": [],
        "outputs": [],
        **fields,
    }


def test_pure_mapping_edges() -> None:
    start, end = ol.events([_record("a" * 64)])
    assert [start["eventType"], end["eventType"]] == ["START", "COMPLETE"]
    assert ol.dumps(end)  # NaN and infinity became strings: strict JSON
    assert end["run"]["facets"]["cmfgit_metrics"]["metrics"] == {"acc": "Infinity"}
    assert end["job"]["namespace"] == "ssh://example.com/org/repo.git"
    location = end["job"]["facets"]["sourceCodeLocation"]
    assert location["url"] == "ssh://example.com/org/repo.git" and location["version"] == "c" * 40
    params = {p["key"]: p["value"] for p in start["run"]["facets"]["executionParameters"]["parameters"]}
    assert params == {"lr": "0.1", "name": "x", "nan": "NaN"}
    assert start["run"]["facets"]["environmentVariables"]["environmentVariables"] == [
        {"name": "OMP_NUM_THREADS", "value": "4"}
    ]
    running = list(ol.events([_record("b" * 64, ended_at=None, exit_code=None)]))
    assert [e["eventType"] for e in running] == ["START"]
    killed = list(ol.events([_record("c" * 64, exit_code=None)]))
    assert killed[1]["eventType"] == "FAIL"
    assert killed[1]["run"]["facets"]["errorMessage"]["message"] == "ended with no exit code (killed)"
    local = list(ol.events([_record("d" * 64, git={"remote": "../central.git"}, site="edge")]))
    assert local[0]["job"]["namespace"] == "../central.git" and "sourceCodeLocation" not in local[0]["job"]["facets"]
    bare = list(ol.events([_record("e" * 64, git={}, site="edge")]))
    assert bare[0]["job"]["namespace"] == "cmfgit://edge"
    for event in start, end, *running, *killed, *local, *bare:
        check_event(event)
    # the fast serialiser writes exactly what dumps() of the events gives
    records = [_record(c * 64, inputs=[{"path": "d.csv", "hash": "md5:" + c * 32, "type": "dataset"}]) for c in "abab"]
    assert list(ol.lines(records)) == [ol.dumps(e) for e in ol.events(records)]


# -- the demo's pipeline ---------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("demo") / "d"
    cmfgit(base.parent, "demo", "--dir", str(base), timeout=300)
    return base


def _log(cwd: Path, *scope: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = json.loads(cmfgit(cwd, "log", "--json", *scope).stdout)
    return sorted(runs, key=lambda r: (r["started_at"], r["id"]))


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def assert_events_match(events: list[dict[str, Any]], runs: list[dict[str, Any]]) -> None:
    """Every event passes the spec check, and says what the records say."""
    for event in events:
        check_event(event)
    by_run: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_run.setdefault(event["run"]["runId"], []).append(event)
    assert len(by_run) == len(runs)
    for run in runs:
        mine = by_run[str(uuid.uuid5(ol.RUN_NAMESPACE, run["id"]))]
        facets = mine[0]["run"]["facets"]
        assert facets["cmfgit_run"]["recordId"] == run["id"]
        assert mine[0]["eventType"] == "START" and mine[0]["eventTime"] == run["started_at"]
        assert mine[0]["job"]["name"] == f"{run['pipeline']}.{run['stage']}"
        ins = [a for a in run["inputs"] if a["hash"]]
        outs = [a for a in run["outputs"] if a["hash"]]
        assert [(d["name"], d["facets"]["version"]["datasetVersion"]) for d in mine[0]["inputs"]] == [
            (a["path"], a["hash"]) for a in ins
        ]
        assert mine[0]["outputs"] == []
        params = {p["key"]: p["value"] for p in facets["executionParameters"]["parameters"]}
        assert params == {k: v if isinstance(v, str) else json.dumps(v) for k, v in run["params"].items()}
        assert facets["cmfgit_run"]["params"] == run["params"]
        assert facets["cmfgit_git"]["commit"] == run["git"].get("commit")
        if run["ended_at"] is None:
            assert len(mine) == 1
            continue
        assert len(mine) == 2
        end = mine[1]
        # START says what was known at the start; the end event what the run ended with
        assert end["run"]["facets"]["cmfgit_metrics"]["metrics"] == run["metrics"]
        assert end["run"]["facets"]["cmfgit_run"] == facets["cmfgit_run"]
        assert "cmfgit_metrics" not in facets and "executionParameters" not in end["run"]["facets"]
        assert ("tags" in end["run"]["facets"]) == bool(run["tags"])
        assert end["eventType"] == ("COMPLETE" if run["exit_code"] == 0 else "FAIL")
        assert end["eventTime"] == run["ended_at"]
        assert [(d["name"], d["facets"]["version"]["datasetVersion"]) for d in end["outputs"]] == [
            (a["path"], a["hash"]) for a in outs
        ]
        assert ("errorMessage" in end["run"]["facets"]) == (run["exit_code"] != 0)


def test_demo_pipeline_to_openlineage_file_and_stdout(demo: Path) -> None:
    lab = demo / "lab"
    runs = _log(lab)
    assert len(runs) == 3
    out = cmfgit(lab, "export", "--format", "openlineage")
    events = _lines(out.stdout)
    assert len(events) == 6
    assert_events_match(events, runs)
    # the lab's remote is a local path ('../central.git'): the namespace, with no source location
    assert {e["job"]["namespace"] for e in events} == {"../central.git"}
    assert all(e["run"]["facets"]["cmfgit_run"]["metadataCommit"] for e in events)

    # the global view of the analyst: both sites, both pipelines, to a file
    analyst = demo / "analyst"
    target = demo / "global.jsonl"
    proc = cmfgit(analyst, "export", "-f", "openlineage", "--global", "-o", str(target))
    everything = _log(analyst, "--global")
    assert len(everything) == 5
    assert proc.stdout == ""
    assert proc.stderr.strip() == f"exported 5 execution(s) as 10 event(s) to {target}"
    events = _lines(target.read_text())
    assert_events_match(events, everything)
    assert {e["job"]["name"] for e in events} == {
        "wine-quality.prepare",
        "wine-quality.train",
        "wine-quality.evaluate",
        "edge-monitor.collect",
    }
    assert {e["run"]["facets"]["cmfgit_run"]["site"] for e in events} == {"lab", "edge"}
    assert [p.name for p in demo.iterdir() if p.name.startswith(".tmp-")] == []
    # times in order: the events come oldest run first
    starts = [e["eventTime"] for e in events if e["eventType"] == "START"]
    assert starts == sorted(starts)

    # the selection of the read commands
    trains = _lines(cmfgit(analyst, "export", "-f", "openlineage", "--global", "--stage", "train").stdout)
    assert_events_match(trains, [r for r in everything if r["stage"] == "train"])
    best = _lines(cmfgit(analyst, "export", "-f", "openlineage", "--global", "-w", "params.lr > 0.002").stdout)
    assert_events_match(best, [r for r in everything if r["params"].get("lr", 0) > 0.002])
    assert len(best) == 2
    edge_only = _lines(cmfgit(analyst, "export", "-f", "openlineage", "--global", "-P", "edge-monitor").stdout)
    assert {e["job"]["name"] for e in edge_only} == {"edge-monitor.collect"}
    named = _lines(cmfgit(lab, "export", "-f", "openlineage", "--namespace", "ml-team").stdout)
    assert {e["job"]["namespace"] for e in named} == {"ml-team"}
    assert {d["namespace"] for e in named for d in e["inputs"]} == {"../central.git"}


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, dict[str, str], bytes]] = []
    answer = 201

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.command, self.path, dict(self.headers), body))
        self.send_response(type(self).answer)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Collector]]]:
    handler = type("Collector", (_Collector,), {"received": [], "answer": 201})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_many_executions_are_encoded_by_two_workers_into_the_same_lines(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objs = _log(demo / "analyst", "--global")
    many = [{**obj, "id": f"{i:04x}{obj['id'][4:]}"} for i in range(9) for obj in objs]  # 45, some shared jobs
    alone = list(ol._lines(many, None, ol.PRODUCER))
    monkeypatch.setattr(ol, "PARALLEL_MIN", 10)
    monkeypatch.setattr(ol, "_CHUNK", 7)
    calls: list[int] = []
    parallel = ol._parallel_lines
    monkeypatch.setattr(ol, "_parallel_lines", lambda e, *a: calls.append(len(e)) or parallel(e, *a))
    assert list(ol.lines(many)) == alone and len(alone) == 90
    assert calls == [45]
    calls.clear()
    # the export's own path: records as canonical bytes, parsed in the workers, lines in blocks
    from cmfgit import canonical

    found, tags, commits = [], {}, {}
    for obj in objs * 9:
        record = {k: v for k, v in obj.items() if k not in ("id", "tags", "metadata_commit")}
        data, rid = canonical.encode(record)
        assert rid == obj["id"]
        found.append((rid, data))
        tags[rid], commits[rid] = obj["tags"], obj["metadata_commit"]
    same = list(ol._lines(objs * 9, None, ol.PRODUCER))
    blocks = list(ol.lines_of_records(found, tags, commits, blocks=True))
    assert len(blocks) == 7 and "\n".join(blocks) == "\n".join(same)  # 45 in chunks of 7
    assert list(ol.lines_of_records(found, tags, commits)) == same
    assert calls == [45, 45]
    out = io.StringIO()
    assert ol.write_lines(iter(blocks), out) == 90 and out.getvalue() == "".join(line + "\n" for line in same)
    assert [json.loads(line)["run"]["facets"]["cmfgit_run"]["recordId"] for line in alone[::2]] == [
        o["id"] for o in many
    ]


def test_demo_pipeline_posted_to_a_lineage_endpoint(
    demo: Path, server: tuple[str, type[_Collector]], tmp_path: Path
) -> None:
    base, handler = server
    analyst = demo / "analyst"
    proc = cmfgit(analyst, "export", "-f", "openlineage", "--global", "--url", base, env={"OPENLINEAGE_API_KEY": "k1"})
    assert proc.stderr.strip() == f"exported 5 execution(s) as 10 event(s) to {base}/api/v1/lineage"
    assert len(handler.received) == 10
    assert {(m, p) for m, p, _, _ in handler.received} == {("POST", "/api/v1/lineage")}
    assert {h["Content-Type"] for _, _, h, _ in handler.received} == {"application/json"}
    assert {h["Authorization"] for _, _, h, _ in handler.received} == {"Bearer k1"}
    posted = [json.loads(body) for _, _, _, body in handler.received]
    assert_events_match(posted, _log(analyst, "--global"))
    # what was POSTed is what the file export writes
    assert posted == _lines(cmfgit(analyst, "export", "-f", "openlineage", "--global").stdout)

    # a URL with a path is used as it is; an error answer is one line, naming the status
    handler.received.clear()
    cmfgit(demo / "lab", "export", "-f", "openlineage", "--url", f"{base}/custom/lineage")
    assert {p for _, p, _, _ in handler.received} == {"/custom/lineage"}
    handler.answer = 422
    bad = cmfgit(demo / "lab", "export", "-f", "openlineage", "--url", base, check=False)
    assert bad.returncode == 1
    assert (
        bad.stderr.strip()
        == f"cmfgit: error: {base}/api/v1/lineage answered 422 Unprocessable Entity (0 event(s) sent)"
    )


def test_unreachable_url_and_other_user_errors_are_one_line(demo: Path) -> None:
    lab = demo / "lab"
    cases = [
        (["--url", "http://127.0.0.1:9"], "cannot POST to http://127.0.0.1:9/api/v1/lineage"),
        (["--url", "ftp://x"], "--url must be an http:// or https:// URL"),
        (["--url", "http://127.0.0.1:9", "-o", "x.jsonl"], "choose one destination"),
        (["-o", str(demo / "nowhere" / "x.jsonl")], "does not exist"),
        (["-o", str(demo)], "is a directory"),
    ]
    for extra, message in cases:
        proc = cmfgit(lab, "export", "-f", "openlineage", *extra, check=False)
        assert proc.returncode != 0, extra
        assert proc.stderr.startswith("cmfgit: error: ") and proc.stderr.count("\n") == 1, proc.stderr
        assert message in proc.stderr
        assert "Traceback" not in proc.stderr
    for extra in (["-f", "prov-json", "--url", "http://x"], ["-f", "cmf-json", "-P", "wine-quality", "--stage", "t"]):
        proc = cmfgit(lab, "export", *extra, check=False)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    unknown = cmfgit(lab, "export", "-f", "yaml", check=False)
    assert (
        unknown.stderr.strip()
        == "cmfgit: error: unknown export format 'yaml' (known: cmf-json, openlineage, prov-json, prov-n)"
    )


# -- PROV ------------------------------------------------------------------------------


def _counts(doc: pm.ProvDocument) -> dict[str, int]:
    found: dict[str, int] = {}
    for record in doc.get_records():
        name = type(record).__name__
        found[name] = found.get(name, 0) + 1
    return found


def expected_prov(runs: list[dict[str, Any]]) -> dict[str, int]:
    """The PROV record counts the mapping (cmfgit/exporters/prov.py) gives ``runs``."""
    hashes, paths, pairs, users = set(), set(), set(), set()
    used = generated = revisions = 0
    for run in runs:
        ins = {a["hash"]: a for a in run["inputs"] if a["hash"]}
        outs = {a["hash"]: a for a in run["outputs"] if a["hash"]}
        used += len(ins)
        generated += len(outs)
        read = {a["path"]: h for h, a in ins.items()}
        revisions += sum(1 for h, a in outs.items() if a["path"] in read and read[a["path"]] != h)
        for h, a in [*ins.items(), *outs.items()]:
            hashes.add(h)
            paths.add(a["path"])
            pairs.add((h, a["path"]))
        if run["user"]:
            users.add((run["user"], run["site"]))
    sites = {run["site"] for run in runs}
    counts = {
        "ProvActivity": len(runs),
        "ProvEntity": len(hashes) + len(paths),
        "ProvAgent": len(sites) + len(users),
        "ProvUsage": used,
        "ProvGeneration": generated,
        "ProvSpecialization": len(pairs),
        "ProvAssociation": len(runs) + sum(1 for r in runs if r["user"]),
        "ProvDelegation": len(users),
        "ProvDerivation": revisions,
    }
    return {k: v for k, v in counts.items() if v}


def test_demo_pipeline_to_prov_json_read_back_and_prov_n(demo: Path) -> None:
    analyst = demo / "analyst"
    runs = _log(analyst, "--global")
    target = demo / "global.prov.json"
    proc = cmfgit(analyst, "export", "-f", "prov-json", "--global", "-o", str(target))
    doc = prov.read(str(target), format="json")
    counts = _counts(doc)
    assert counts == expected_prov(runs)
    total = sum(counts.values())
    assert proc.stderr.strip() == f"exported 5 execution(s) as {total} PROV record(s) to {target}"
    # what each record says
    for run in runs:
        activity = doc.get_record(f"run:{run['id']}")[0]
        attrs = {str(k): v for k, v in activity.attributes}
        assert attrs["cmfgit:pipeline"] == run["pipeline"] and attrs["cmfgit:stage"] == run["stage"]
        assert json.loads(attrs["cmfgit:params"]) == run["params"]
        assert activity.get_startTime().isoformat().replace("+00:00", "Z") == run["started_at"]
    used = {
        (str(u.get_attribute("prov:activity").pop()), str(u.get_attribute("prov:entity").pop()))
        for u in doc.get_records(pm.ProvUsage)
    }
    assert used == {
        (f"run:{r['id']}", f"artifact:{a['hash'].replace(':', '%3A')}") for r in runs for a in r["inputs"] if a["hash"]
    }
    # the same document as PROV-N, read back from its JSON twin
    provn = cmfgit(analyst, "export", "-f", "prov-n", "--global").stdout
    assert provn.startswith("document\n") and provn.rstrip().endswith("endDocument")
    for run in runs:
        assert f"activity(run:{run['id']}, " in provn
    assert provn.count("\n  used(") == counts["ProvUsage"]
    assert provn.count("\n  wasGeneratedBy(") == counts["ProvGeneration"]
    assert sorted(provn.splitlines()) == sorted(doc.get_provn().splitlines())


def test_revisions_failures_and_credentials(repo: Path) -> None:
    git(repo, "remote", "add", "origin", "https://ana:s3cret-pw@git.example.com/team/proj.git")
    (repo / "data.csv").write_text("a\n1\n")
    cmfgit(repo, "log-run", "-s", "clean", "-i", "data.csv", "-o", "data.csv", "--", "sh", "-c", "echo 2 >> data.csv")
    fail = cmfgit(repo, "log-run", "-s", "train", "-i", "data.csv", "--", "sh", "-c", "exit 3", check=False)
    assert fail.returncode == 3
    runs = _log(repo)
    out = cmfgit(repo, "export", "-f", "openlineage").stdout
    assert "s3cret" not in out
    events = _lines(out)
    assert_events_match(events, runs)
    failed = [e for e in events if e["eventType"] == "FAIL"]
    assert len(failed) == 1
    assert failed[0]["run"]["facets"]["errorMessage"]["message"] == "exit code 3"
    assert failed[0]["run"]["facets"]["errorMessage"]["programmingLanguage"] == "unknown"
    assert {e["job"]["namespace"] for e in events} == {"https://git.example.com/team/proj.git"}
    assert (
        events[0]["job"]["facets"]["sourceCodeLocation"]["repoUrl"]
        == "https://ana:REDACTED@git.example.com/team/proj.git"
    )

    doc = prov.read(io.StringIO(cmfgit(repo, "export", "-f", "prov-json").stdout), format="json")
    assert _counts(doc) == expected_prov(runs)
    derivation = list(doc.get_records(pm.ProvDerivation))
    assert len(derivation) == 1  # clean read one version of data.csv and wrote the next
    assert str(derivation[0].get_attribute("prov:type").pop()) == "prov:Revision"
    assert "s3cret" not in cmfgit(repo, "export", "-f", "prov-n").stdout


def test_without_prov_installed_the_error_says_what_to_install(repo: Path) -> None:
    code = (
        "import sys; sys.modules['prov'] = None; sys.modules['prov.model'] = None\n"
        "from cmfgit.main import main_exit; sys.argv = ['cmfgit', 'export', '-f', 'prov-json']; main_exit()"
    )
    proc = __import__("subprocess").run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr == "cmfgit: error: the PROV export needs the prov package: pip install 'cmfgit[prov]'\n"


# -- an imported CMF history --------------------------------------------------------------


def test_imported_cmf_history_to_openlineage_and_prov(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    mlmd = tmp_path / "mlmd"
    mlmd.write_bytes(SET3_MLMD.read_bytes())
    cmfgit(repo, "import", str(mlmd))
    runs = _log(repo)
    assert len(runs) == 6 and {r["pipeline"] for r in runs} == {"Test-env", "test-execution-update"}
    events = _lines(cmfgit(repo, "export", "-f", "openlineage").stdout)
    # CMF keeps no end time: each run is a START, and says so
    assert [e["eventType"] for e in events] == ["START"] * 6
    assert_events_match(events, runs)
    assert {e["job"]["namespace"] for e in events} == {"/srv/cmf-example/cmflib-gitremote.git"}
    # the comma-joined Execution_uuid of cmflib's merged execution is kept, the run id is a UUID
    assert any("," in e["run"]["facets"]["cmfgit_run"]["uuid"] for e in events)
    md5s = {d["facets"]["version"]["datasetVersion"] for e in events for d in e["inputs"]}
    assert md5s and all(v.startswith("md5:") for v in md5s)

    doc = prov.read(io.StringIO(cmfgit(repo, "export", "-f", "prov-json").stdout), format="json")
    assert _counts(doc) == expected_prov(runs)
    assert _counts(doc)["ProvActivity"] == 6
