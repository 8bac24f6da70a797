#!/usr/bin/python3
"""Differential runner: the same requests to kubesim and to a real
kube-apiserver, the answers normalized and compared.

    run.py --sim KUBECONFIG --real KUBECONFIG CASE.yaml...

Cases are data (e2e/diff/cases/*.yaml, one file per theme; the format is
in e2e/diff/README.md), so a new case needs no change here. Every file
runs on both servers in order; a file's steps may save values from an
answer (per server) and use them later as ${name}.

Exit status: 0 when every step matched (or differed exactly where its
case says kubesim deliberately differs), 1 otherwise, 2 on bad input.
"""

import base64
import copy
import http.client
import json
import re
import ssl
import sys
import time
import urllib.parse

import yaml

# Fields that say which server answered, not what it answered.
DROP_META = ("uid", "creationTimestamp", "managedFields", "selfLink")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


class Server:
    def __init__(self, label, kubeconfig):
        self.label = label
        with open(kubeconfig) as f:
            kc = yaml.safe_load(f)
        ctx_name = kc["current-context"]
        ctx = next(c["context"] for c in kc["contexts"]
                   if c["name"] == ctx_name)
        cl = next(c["cluster"] for c in kc["clusters"]
                  if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in kc["users"]
                    if u["name"] == ctx["user"])
        url = urllib.parse.urlsplit(cl["server"])
        self.host, self.port = url.hostname, url.port
        self.tls = ssl.create_default_context()
        if "certificate-authority-data" in cl:
            self.tls.load_verify_locations(cadata=base64.b64decode(
                cl["certificate-authority-data"]).decode())
        else:
            self.tls.load_verify_locations(cafile=cl["certificate-authority"])
        self.token = user["token"]
        self.vars = {}

    def request(self, method, path, body, headers):
        conn = http.client.HTTPSConnection(self.host, self.port,
                                           context=self.tls, timeout=30)
        h = {"Authorization": "Bearer " + self.token,
             "Accept": "application/json"}
        h.update(headers)
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            hdrs = {}
            for k, v in r.getheaders():
                hdrs.setdefault(k.lower(), []).append(v)
            return r.status, hdrs, data
        finally:
            conn.close()


def subst(v, vars_):
    """${name} in strings of v, from one server's saved values."""
    if isinstance(v, str):
        return re.sub(r"\$\{(\w+)\}",
                      lambda m: str(vars_[m.group(1)]), v)
    if isinstance(v, list):
        return [subst(x, vars_) for x in v]
    if isinstance(v, dict):
        return {k: subst(x, vars_) for k, x in v.items()}
    return v


def unsubst(v, vars_):
    """A saved value seen again in an answer reads as its ${name} (so a
    list's resourceVersion compares equal when it is 'the version saved
    as rv1' on both servers). Longest values first."""
    pairs = sorted(((str(x), k) for k, x in vars_.items() if str(x)),
                   key=lambda p: -len(p[0]))
    if isinstance(v, str):
        for val, name in pairs:
            if v == val:
                return "${" + name + "}"
        for val, name in pairs:
            if len(val) >= 8:  # uids; short values would hit at random
                v = v.replace(val, "${" + name + "}")
        return v
    if isinstance(v, list):
        return [unsubst(x, vars_) for x in v]
    if isinstance(v, dict):
        return {k: unsubst(x, vars_) for k, x in v.items()}
    return v


def normalize(v, keep):
    """Drops server-specific metadata; resourceVersion values and
    server-set times become placeholders (kept fields are left alone)."""
    if isinstance(v, list):
        return [normalize(x, keep) for x in v]
    if not isinstance(v, dict):
        return v
    out = {}
    for k, x in v.items():
        if k in DROP_META and k not in keep:
            continue
        if k == "resourceVersion" and isinstance(x, str) and \
                x.isdigit() and "resourceVersion" not in keep:
            out[k] = "<rv>"
        elif k in ("deletionTimestamp",) and isinstance(x, str) and \
                TIME_RE.match(x):
            out[k] = "<time>"
        else:
            out[k] = normalize(x, keep)
    return out


def rewrite(v, rules):
    """A case's own [regex, replacement] rules, on every string of v."""
    if isinstance(v, str):
        for pat, rep in rules:
            v = re.sub(pat, rep, v)
        return v
    if isinstance(v, list):
        return [rewrite(x, rules) for x in v]
    if isinstance(v, dict):
        return {k: rewrite(x, rules) for k, x in v.items()}
    return v


def get_path(obj, path):
    """Dotted path; [N] indexes, [*] maps over a list; a key with dots in
    it is written in quotes: metadata.labels."kueue.x-k8s.io/queue-name"."""
    toks = re.findall(r'"([^"]*)"|\[(\*|\d+)\]|([^.\[\]"]+)', path)
    cur = [obj]
    star = False
    for quoted, idx, key in toks:
        nxt = []
        for c in cur:
            if idx == "*":
                star = True
                if isinstance(c, list):
                    nxt.extend(c)
            elif idx:
                if isinstance(c, list) and int(idx) < len(c):
                    nxt.append(c[int(idx)])
                else:
                    nxt.append(None)
            else:
                k = quoted or key
                nxt.append(c.get(k) if isinstance(c, dict) else None)
        cur = nxt
    return cur if star else cur[0]


class Answer:
    def __init__(self, code, headers, data):
        self.code = code
        self.headers = headers
        self.text = data.decode("utf-8", "replace")
        ctype = headers.get("content-type", [""])[0]
        self.json = None
        if ctype.startswith("application/json"):
            try:
                self.json = json.loads(self.text)
            except ValueError:
                pass
        self.kind = ("Status" if isinstance(self.json, dict) and
                     self.json.get("kind") == "Status" else
                     "json" if self.json is not None else
                     "text:" + ctype.split(";")[0])

    def view(self, what, vars_, keep):
        """One comparable aspect of the answer."""
        if what == "code":
            return self.code
        if what == "kind":
            return self.kind
        if what == "text":
            return self.text
        if what == "status":
            if self.kind != "Status":
                return {"notStatus": self.kind}
            s = {k: self.json.get(k) for k in
                 ("status", "reason", "message", "code", "details")}
            return unsubst(normalize(s, keep), vars_)
        if what == "body":
            if self.json is None:
                return self.text
            return unsubst(normalize(self.json, keep), vars_)
        if what.startswith("header:"):
            return self.headers.get(what[7:].lower(), [])
        if what.startswith("field:"):
            if self.json is None:
                return {"notJSON": self.kind}
            v = get_path(self.json, what[6:])
            return unsubst(normalize(copy.deepcopy(v), keep), vars_)
        raise ValueError("unknown compare item " + what)


def encode_body(step):
    if "raw" in step:
        return step["raw"].encode()
    if "body" in step:
        return json.dumps(step["body"]).encode()
    return None


def default_ctype(method):
    return ("application/merge-patch+json" if method == "PATCH" else
            "application/json")


def send(srv, step):
    method = step.get("method", "GET")
    path = subst(step["path"], srv.vars)
    if step.get("query"):
        q = urllib.parse.urlencode(subst(step["query"], srv.vars))
        path += ("&" if "?" in path else "?") + q
    body = encode_body(step)
    if body is not None:
        body = subst(body.decode(), srv.vars).encode()
    headers = dict(subst(step.get("headers", {}), srv.vars))
    if body is not None:
        headers.setdefault("Content-Type",
                           step.get("contentType", default_ctype(method)))
    return Answer(*srv.request(method, path, body, headers))


def until_met(ans, cond, vars_):
    if "code" in cond and ans.code != cond["code"]:
        return False
    if "field" in cond:
        got = get_path(ans.json, cond["field"]) if ans.json else None
        if got != subst(cond.get("equals"), vars_):
            return False
    return True


def run_step(srv, step):
    """Sends the step (again, until its `until` holds or time runs out)."""
    ans = send(srv, step)
    cond = step.get("until")
    if cond:
        end = time.monotonic() + cond.get("seconds", 10)
        while not until_met(ans, cond, srv.vars) and time.monotonic() < end:
            time.sleep(0.1)
            ans = send(srv, step)
    for name, path in step.get("save", {}).items():
        if ans.json is not None:
            v = get_path(ans.json, path)
            if v is not None:
                srv.vars[name] = v
    return ans


def compare_items(step, ans):
    if "compare" in step:
        return step["compare"]
    items = ["code", "kind"]
    items.append("status" if ans.kind == "Status" else
                 "body" if ans.json is not None else "text")
    return items


def show(v):
    return json.dumps(v, sort_keys=True)[:600]


def run_file(path, servers, verbose):
    with open(path) as f:
        doc = yaml.safe_load(f)
    theme = doc.get("theme", path)
    results = {"ok": 0, "differs": 0, "fail": []}
    for srv in servers:
        srv.vars = dict(doc.get("vars", {}))
    for step in doc.get("setup", []):
        for srv in servers:
            ans = run_step(srv, step)
            if not (200 <= ans.code < 300 or ans.code == 409):
                results["fail"].append(
                    f"{theme}: setup {step.get('name', step['path'])} on "
                    f"{srv.label}: {ans.code} {ans.text[:300]}")
    for step in doc.get("cases", []):
        name = f"{theme}: {step['name']}"
        answers = [run_step(srv, step) for srv in servers]
        keep = tuple(step.get("keep", ()))
        problems = []
        exp = step.get("expect", {})
        real = answers[1]
        if "code" in exp and real.code != exp["code"]:
            problems.append(f"the real server answered {real.code}, the "
                            f"case expects {exp['code']}: {real.text[:300]}")
        items = compare_items(step, real)
        rules = step.get("normalize", [])
        diffs = []
        for what in items:
            a = rewrite(answers[0].view(what, servers[0].vars, keep), rules)
            b = rewrite(real.view(what, servers[1].vars, keep), rules)
            if a != b:
                diffs.append(f"  {what}\n    kubesim: {show(a)}\n"
                             f"    real:    {show(b)}")
        deliberate = step.get("differs")
        if deliberate and not diffs:
            problems.append("the case says kubesim differs (" + deliberate +
                            ") but the answers match: update the case and "
                            "docs/kubesim.md")
        elif diffs and not deliberate:
            problems.append("answers differ:\n" + "\n".join(diffs))
        if problems:
            results["fail"].append(name + ": " + "; ".join(problems))
            print("DIFF", name)
        elif deliberate:
            results["differs"] += 1
            print("ok (differs deliberately)", name)
            if verbose:
                print("\n".join(diffs))
        else:
            results["ok"] += 1
            print("ok  ", name)
    return results


def main(argv):
    args = {"--sim": None, "--real": None}
    files = []
    verbose = False
    it = iter(argv)
    for a in it:
        if a in args:
            args[a] = next(it)
        elif a == "-v":
            verbose = True
        else:
            files.append(a)
    if not all(args.values()) or not files:
        print(__doc__, file=sys.stderr)
        return 2
    servers = [Server("kubesim", args["--sim"]),
               Server("real", args["--real"])]
    ok = differs = 0
    fails = []
    for path in files:
        r = run_file(path, servers, verbose)
        ok += r["ok"]
        differs += r["differs"]
        fails += r["fail"]
    print(f"{ok} cases match, {differs} differ deliberately, "
          f"{len(fails)} fail")
    for f in fails:
        print("FAIL:", f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
