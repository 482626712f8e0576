#!/usr/bin/python3
"""Validates recorded HTTP responses against docs/openapi.yaml.

    tests/openapi/check_responses.py DOC LOG...

Each LOG holds one JSON line per response a suite received
(tests/support/contract.c): the request's method, path and Accept, the
status, the response headers, and the body when it is JSON. For each line:

- A path the document names (literal paths before templated ones, a
  template segment matching one path segment) and a method it documents:
  the status must be one the operation lists; the Content-Type must be one
  of that response's media types (exactly, or by `type/*`, `*/*`); a JSON
  body must validate against the media type's schema (JSON Schema 2020-12,
  the document's dialect), except that a raw read (`?raw`, or an Accept
  that got a non-JSON type) is described by `*/*`; every header the
  response documents with a schema must validate, and one marked required
  must be present.
- A documented path and an undocumented method: 405 with the error body and
  an `Allow` naming exactly the documented methods, or one of the statuses
  that come before routing (components/responses/BeforeRouting).
- A path the document does not name: components/responses/NoRoute (404) or
  a status that comes before routing, with the error body.
- A response parsed from a raw byte stream, whose request the suite did not
  record (method and path null): some operation must document its status
  with a schema its body validates against.

Every operation must have been seen at least once. The verdicts are grouped
by operation and status; the last line is "N passed, M failed" over those
groups, the coverage check and the log's own soundness. Exit status 1 when
any failed.
"""
import json
import re
import sys
import urllib.parse
from collections import defaultdict

import jsonschema
import yaml

METHODS = ("get", "head", "put", "post", "delete", "options", "patch", "trace")
EXAMPLES_PER_FAILURE = 3


def load_doc(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


class Contract:
    def __init__(self, doc):
        self.doc = doc
        self.resolver = jsonschema.RefResolver.from_schema(doc)
        self.literal = {}
        self.templated = []
        for template, item in doc["paths"].items():
            segments = template.strip("/").split("/")
            if any(s.startswith("{") for s in segments):
                self.templated.append((segments, template, item))
            else:
                self.literal[template] = item

    def resolve(self, node):
        while isinstance(node, dict) and "$ref" in node:
            _, node = self.resolver.resolve(node["$ref"])
        return node

    def route(self, path, method):
        """
        The (template, path item) a request path (query cut off) names, or None. A literal path
        wins over a template, but only for the methods it documents: `GET /cache/_mget` is the
        key `_mget`, as the server routes it. A template segment matches any one segment, the
        empty one included (`PUT /cache/` names the empty key, which the server refuses).
        """
        candidates = [(path, self.literal[path])] if path in self.literal else []
        segments = path[1:].split("/")
        for pattern, template, item in self.templated:
            if len(pattern) == len(segments) and all(p == s or p.startswith("{") for p, s in zip(pattern, segments)):
                candidates.append((template, item))
        for template, item in candidates:
            if method in item:
                return template, item
        return candidates[0] if candidates else None

    def validate(self, schema, instance):
        """None when instance validates against schema, else the first error's message."""
        validator = jsonschema.Draft202012Validator(schema, resolver=self.resolver)
        error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
        return None if error is None else f"{error.message} (at {'/'.join(map(str, error.absolute_path)) or 'top'})"

    def operations(self):
        for template, item in self.doc["paths"].items():
            for method in METHODS:
                if method in item:
                    yield template, method, item[method]


def media_type(headers):
    ct = headers.get("content-type")
    return None if ct is None else ct.split(";")[0].strip().lower()


def pick_media(content, mtype, raw):
    """The documented media type object for a response's type, or None."""
    if raw and "*/*" in content:
        return content["*/*"]
    if mtype in content:
        return content[mtype]
    major = mtype.split("/")[0] + "/*"
    if major in content:
        return content[major]
    return content.get("*/*")


def wants_raw(query, accept, mtype):
    raw = query.get("raw")
    if raw is not None:
        return raw[0] not in ("0", "false")
    return accept is not None and mtype is not None and mtype != "application/json"


class Checker:
    def __init__(self, contract):
        self.c = contract
        self.groups = defaultdict(lambda: {"checked": 0, "failures": []})
        self.seen_ops = set()
        self.before_routing = {str(s) for s in contract.doc["components"]["responses"]["BeforeRouting"]["x-statuses"]}

    def fail(self, group, line, why):
        self.groups[group]["failures"].append(f"{why}\n      {json.dumps(summary(line))}")

    def check_body(self, group, line, response, raw):
        """The media type, the schema of a JSON body, and the headers of one documented response."""
        response = self.c.resolve(response)
        headers = line["headers"]
        for name, header in response.get("headers", {}).items():
            header = self.c.resolve(header)
            value = headers.get(name.lower())
            if value is None:
                if header.get("required"):
                    self.fail(group, line, f"header {name} is required and missing")
                continue
            schema = header.get("schema", {})
            instance = int(value) if schema.get("type") == "integer" and value.isdigit() else value
            error = self.c.validate(schema, instance)
            if error:
                self.fail(group, line, f"header {name}: {error}")
        if line.get("body_not_utf8"):
            self.fail(group, line, "a JSON Content-Type with a body that is not UTF-8")
            return
        if line["body_bytes"] == 0:
            return  # HEAD, 304: nothing to validate beyond the headers
        content = response.get("content")
        mtype = media_type(headers)
        if not content:
            self.fail(group, line, "a body where the document describes none")
            return
        if mtype is None:
            self.fail(group, line, "a body without Content-Type")
            return
        media = pick_media(content, mtype, raw)
        if media is None:
            self.fail(group, line, f"Content-Type {mtype} is not documented ({', '.join(content)})")
            return
        if "body" in line and media is not content.get("*/*"):
            try:
                body = json.loads(line["body"])
            except ValueError as e:
                self.fail(group, line, f"the body is not JSON: {e}")
                return
            error = self.c.validate(media.get("schema", {}), body)
            if error:
                self.fail(group, line, f"body: {error}")

    def check_fallback(self, group, line, name):
        """A response the document gives no operation for: NoRoute or BeforeRouting's statuses."""
        responses = self.c.doc["components"]["responses"]
        if str(line["status"]) not in self.before_routing and name is None:
            self.fail(group, line, f"status {line['status']} is neither 404 nor one that comes before routing")
            return
        self.check_body(group, line, responses[name or "BeforeRouting"], False)

    def check(self, line):
        status = str(line["status"])
        if line["method"] is None:
            return self.check_unattributed(line)
        url = urllib.parse.urlsplit(line["path"])
        path, query = url.path, urllib.parse.parse_qs(url.query, keep_blank_values=True)
        routed = self.c.route(path, line["method"].lower()) if line["path"].startswith("/") else None
        if routed is None:
            group = ("(no route)", status)
            self.groups[group]["checked"] += 1
            return self.check_fallback(group, line, "NoRoute" if status == "404" else None)
        template, item = routed
        method = line["method"].lower()
        if method not in item:
            group = (f"{line['method']} {template} (not documented)", status)
            self.groups[group]["checked"] += 1
            if status != "405":
                return self.check_fallback(group, line, None)
            allow = {m.strip().lower() for m in line["headers"].get("allow", "").split(",") if m.strip()}
            documented = {m for m in METHODS if m in item}
            if allow != documented:
                self.fail(group, line, f"Allow names {sorted(allow)}, the document {sorted(documented)}")
            return self.check_body(group, line, self.c.doc["components"]["responses"]["MethodNotAllowed"], False)
        op = item[method]
        self.seen_ops.add(op["operationId"])
        group = (f"{op['operationId']} ({line['method']} {template})", status)
        self.groups[group]["checked"] += 1
        responses = op["responses"]
        response = responses.get(status, responses.get("default"))
        if response is None and status in self.before_routing:
            response = self.c.doc["components"]["responses"]["BeforeRouting"]
        if response is None:
            self.fail(group, line, f"status {status} is not documented for this operation ({', '.join(responses)})")
            return
        mtype = media_type(line["headers"])
        self.check_body(group, line, response, wants_raw(query, line.get("accept"), mtype))

    def check_unattributed(self, line):
        status = str(line["status"])
        group = ("(raw stream, request not recorded)", status)
        self.groups[group]["checked"] += 1
        errors = []
        fallbacks = self.c.doc["components"]["responses"]
        candidates = [op["responses"].get(status) for _, _, op in self.c.operations()]
        candidates.append(fallbacks["BeforeRouting"] if status in self.before_routing else None)
        candidates.append({"404": fallbacks["NoRoute"], "405": fallbacks["MethodNotAllowed"]}.get(status))
        for response in candidates:
            if response is None:
                continue
            media = (self.c.resolve(response).get("content") or {}).get("application/json")
            if media is None:
                continue
            error = self.c.validate(media.get("schema", {}), json.loads(line["body"])) if "body" in line else None
            if error is None:
                return
            errors.append(error)
        self.fail(group, line, "no operation documents this status with a schema the body fits"
                  + (f" (e.g. {errors[0]})" if errors else ""))


def summary(line):
    out = {k: line.get(k) for k in ("method", "path", "status")}
    out["content-type"] = line["headers"].get("content-type")
    if "body" in line:
        out["body"] = line["body"][:300]
    return out


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    contract = Contract(load_doc(argv[1]))
    checker = Checker(contract)
    lines = bad_lines = 0
    for log in argv[2:]:
        with open(log, encoding="utf-8") as f:
            for text in f:
                lines += 1
                try:
                    line = json.loads(text)
                except ValueError:
                    bad_lines += 1
                    continue
                checker.check(line)

    passed = failed = 0
    for (name, status), g in sorted(checker.groups.items()):
        verdict = "ok" if not g["failures"] else f"FAILED ({len(g['failures'])} of {g['checked']})"
        print(f"  {name} {status}: {g['checked']} responses {verdict}")
        for why in g["failures"][:EXAMPLES_PER_FAILURE]:
            print(f"    - {why}")
        if g["failures"]:
            failed += 1
        else:
            passed += 1

    unseen = sorted({op["operationId"] for _, _, op in contract.operations()} - checker.seen_ops)
    if unseen or lines == 0:
        print(f"  operations no suite exercised: {', '.join(unseen) or '(no responses recorded)'}")
        failed += 1
    else:
        passed += 1
    if bad_lines:
        print(f"  {bad_lines} log lines are not JSON")
        failed += 1
    else:
        passed += 1

    documented = {(op["operationId"], s) for _, _, op in contract.operations() for s in op["responses"]}
    observed = {(name.split(" ")[0], status) for name, status in checker.groups}
    untested = sorted(documented - observed)
    print(f"{lines} responses checked; documented statuses no suite received ({len(untested)}): "
          + ", ".join(f"{o} {s}" for o, s in untested))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
