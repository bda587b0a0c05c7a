"""Checks the Grafana dashboard of deploy/grafana: it is a dashboard Grafana can provision (ids
unique, panels within the 24-column grid, every query on the provisioned Prometheus data
source), and every PromQL expression in it parses — through `promtool check rules`, as the
expression of a recording rule. The alerting rules themselves are checked by promtool directly
(.ci/run). Usage: python3 .ci/ops_check.py (from the repository root)."""

import json
import subprocess
import sys
import tempfile

import yaml

DASHBOARD = "deploy/grafana/dashboards/stocklake.json"
DATASOURCES = "deploy/grafana/provisioning/datasources/prometheus.yml"


def main():
    board = json.load(open(DASHBOARD))
    uids = {d["uid"] for d in yaml.safe_load(open(DATASOURCES))["datasources"]}
    problems = []
    ids = [p["id"] for p in board["panels"]]
    if len(ids) != len(set(ids)):
        problems.append(f"panel ids repeat: {ids}")
    if not board.get("uid") or not board.get("title"):
        problems.append("the dashboard has no uid or title")
    exprs = []
    for p in board["panels"]:
        g = p["gridPos"]
        if g["x"] < 0 or g["w"] < 1 or g["x"] + g["w"] > 24 or g["h"] < 1:
            problems.append(f"panel {p['title']!r} is outside the 24-column grid: {g}")
        if not p.get("targets"):
            problems.append(f"panel {p['title']!r} has no query")
        for t in p.get("targets", []):
            uid = t.get("datasource", p.get("datasource", {})).get("uid")
            if uid not in uids:
                problems.append(f"panel {p['title']!r} queries data source {uid!r}, not one of {uids}")
            exprs.append((p["title"], t["expr"]))
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:panel_{i}", "expr": e} for i, (_, e) in enumerate(exprs)]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump(rules, f)
    check = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
    if check.returncode != 0:
        problems.append("an expression does not parse:\n" + check.stdout + check.stderr)
    for p in problems:
        print("dashboard:", p, file=sys.stderr)
    print(f"{DASHBOARD}: {len(board['panels'])} panels, {len(exprs)} expressions checked")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
