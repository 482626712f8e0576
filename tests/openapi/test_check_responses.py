#!/usr/bin/python3
"""The response check can fail: hand-made log lines against docs/openapi.yaml.

    tests/openapi/test_check_responses.py DOC

Each case is one recorded response and whether the check must accept it.
Prints one line per case and "N passed, M failed"; exit status 1 when any
case got the wrong verdict.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_responses  # noqa: E402

JSON = {"content-type": "application/json"}
ETAG = {"content-type": "application/json", "etag": '"0006b0849e800001"', "cache-control": "no-cache",
        "vary": "Accept"}


def line(method, path, status, headers, body=None, accept=None):
    out = {"method": method, "path": path, "accept": accept, "status": status, "headers": headers,
           "body_bytes": len(body or "")}
    if body is not None:
        out["body"] = body
    return out


CASES = [
    # (name, line, accepted)
    ("a read's envelope", line("GET", "/cache/k", 200, ETAG, '{"key":"k","value":1,"ttl":5}'), True),
    ("an envelope with an unknown member",
     line("GET", "/cache/k", 200, ETAG, '{"key":"k","value":1,"extra":2}'), False),
    ("an envelope with both key forms",
     line("GET", "/cache/k", 200, ETAG, '{"key":"k","key_base64":"aw==","value":1}'), False),
    ("a read without its ETag", line("GET", "/cache/k", 200, {**JSON, "cache-control": "no-cache"},
                                     '{"key":"k","value":1}'), False),
    ("a malformed ETag", line("GET", "/cache/k", 200, {**ETAG, "etag": '"xyz"'}, '{"key":"k","value":1}'), False),
    ("a raw read of a JSON value", line("GET", "/cache/k?raw", 200, ETAG, "[1,2]"), True),
    ("the same body without ?raw", line("GET", "/cache/k", 200, ETAG, "[1,2]"), False),
    ("a status the operation does not list", line("DELETE", "/cache/k", 409, JSON, '{"error":"x"}'), False),
    ("a status before routing", line("DELETE", "/cache/k", 431, JSON, '{"error":"x"}'), True),
    ("an error body with more members", line("GET", "/cache/k", 404, JSON, '{"error":"x","code":1}'), False),
    ("a message outside its enumeration", line("POST", "/cache", 200, JSON, '{"message":"saved"}'), False),
    ("GET /cache/_mget is the key _mget", line("GET", "/cache/_mget", 404, JSON, '{"error":"key not found"}'),
     True),
    ("405 with the documented Allow",
     line("PATCH", "/cache", 405, {**JSON, "allow": "GET, HEAD, POST, DELETE"}, '{"error":"method not allowed"}'),
     True),
    ("405 with a wrong Allow",
     line("PATCH", "/cache", 405, {**JSON, "allow": "GET, POST"}, '{"error":"method not allowed"}'), False),
    ("an unknown path's 404", line("GET", "/nope", 404, JSON, '{"error":"not found"}'), True),
    ("an unknown path's 200", line("GET", "/nope", 200, JSON, '{"status":"ok"}'), False),
    ("a media type not documented", line("GET", "/stats", 200, {"content-type": "text/html"}, "<p>"), False),
    ("stats without a member", line("GET", "/stats", 200, JSON, '{"entries":1}'), False),
    ("a raw-stream response that fits", line(None, None, 200, JSON, '{"status":"ok"}'), True),
    ("a raw-stream response that fits nothing", line(None, None, 200, JSON, '{"surprise":true}'), False),
    ("a JSON type on bytes that are not UTF-8",
     {**line("POST", "/cache", 400, JSON), "body_bytes": 3, "body_not_utf8": True}, False),
]


def main(argv):
    contract = check_responses.Contract(check_responses.load_doc(argv[1]))
    passed = failed = 0
    for name, case, accepted in CASES:
        checker = check_responses.Checker(contract)
        checker.check(json.loads(json.dumps(case)))
        got = not any(g["failures"] for g in checker.groups.values())
        ok = got == accepted
        print(f"  {'ok' if ok else 'WRONG'}: {name}: {'accepted' if got else 'refused'}")
        if not ok:
            for g in checker.groups.values():
                for why in g["failures"]:
                    print(f"    - {why}")
        passed, failed = passed + ok, failed + (not ok)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
