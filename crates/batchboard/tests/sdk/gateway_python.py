"""The official `openai` Python SDK against Batchboard's own /v1 with
personal access tokens, unchanged: upload (checked), create, retrieve,
list with paging, content, cancel, and OpenAI's error classes for a refused
file (with its line), a viewer token creating, a revoked token, a 404.
Run by tests/it/gateway.rs with BB_URL, OP_TOKEN, VIEWER_TOKEN and
REVOKED_TOKEN set."""
import io
import json
import os
import time

import openai
from openai import OpenAI

base = os.environ["BB_URL"]
op = OpenAI(base_url=base, api_key=os.environ["OP_TOKEN"], max_retries=0)
viewer = OpenAI(base_url=base, api_key=os.environ["VIEWER_TOKEN"], max_retries=0)
revoked = OpenAI(base_url=base, api_key=os.environ["REVOKED_TOKEN"], max_retries=0)


def lines(n, start=0):
    return "\n".join(
        json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
                    "body": {"model": "gpt-4o-mini", "max_tokens": 5,
                             "messages": [{"role": "user", "content": f"hi {i}"}]}})
        for i in range(start, start + n)
    ) + "\n"


data = lines(3)
f = op.files.create(file=("in.jsonl", io.BytesIO(data.encode())), purpose="batch")
assert f.purpose == "batch" and f.bytes == len(data) and f.filename == "in.jsonl", f
assert f.id in [x.id for x in op.files.list(purpose="batch")]
assert op.files.retrieve(f.id).id == f.id
b = op.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                      completion_window="24h", metadata={"k": "v"})
assert b.metadata["k"] == "v" and b.metadata["created_by"] == "op", b
deadline = time.time() + 30
while b.status not in ("completed", "failed", "cancelled", "expired"):
    assert time.time() < deadline, b
    time.sleep(0.2)
    b = op.batches.retrieve(b.id)
assert b.status == "completed" and b.request_counts.completed == 3, b
out = [json.loads(l) for l in op.files.content(b.output_file_id).text.splitlines()]
assert sorted(l["custom_id"] for l in out) == ["r0", "r1", "r2"], out
# A viewer token reads, downloads and lists...
assert viewer.batches.retrieve(b.id).status == "completed"
assert len(viewer.files.content(b.output_file_id).text.splitlines()) == 3

# More batches, then the list pages through all of them, newest first.
ids = [b.id]
for k in range(2):
    g = op.files.create(file=(f"more{k}.jsonl", io.BytesIO(lines(2, 10 * k).encode())), purpose="batch")
    ids.append(op.batches.create(input_file_id=g.id, endpoint="/v1/chat/completions",
                                 completion_window="24h").id)
seen = [x.id for x in op.batches.list(limit=1)]
assert seen[:3] == ids[::-1], (seen, ids)
first = op.batches.list(limit=2)
assert len(first.data) == 2 and first.has_more, first

# Cancel (a completed batch cannot be: the upstream's 4xx comes through).
try:
    op.batches.cancel(b.id)
    raise AssertionError("cancelling a completed batch must fail")
except openai.APIStatusError as e:
    assert 400 <= e.status_code < 500, e

# A file with problems: refused with the line, nothing forwarded.
bad = lines(1) + "{not json\n"
try:
    op.files.create(file=("bad.jsonl", io.BytesIO(bad.encode())), purpose="batch")
    raise AssertionError("a bad file must be refused")
except openai.UnprocessableEntityError as e:
    assert "line 2" in e.message, e.message
    assert e.body["code"] == "invalid_file", e.body

# ...but not create or cancel.
try:
    viewer.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    raise AssertionError("a viewer token must not create")
except openai.PermissionDeniedError as e:
    assert "operator" in e.message, e.message
try:
    viewer.files.create(file=("v.jsonl", io.BytesIO(data.encode())), purpose="batch")
    raise AssertionError("a viewer token must not upload")
except openai.PermissionDeniedError:
    pass

# A revoked token stops.
try:
    revoked.batches.list()
    raise AssertionError("a revoked token must be refused")
except openai.AuthenticationError as e:
    assert "token" in e.message, e.message

# Not found, in OpenAI's shape.
try:
    op.batches.retrieve("batch_doesnotexist")
    raise AssertionError("an unknown batch must be 404")
except openai.NotFoundError:
    pass
try:
    op.files.retrieve("file-notmine")
    raise AssertionError("a file that is not the caller's must be 404")
except openai.NotFoundError:
    pass
print("ok")
