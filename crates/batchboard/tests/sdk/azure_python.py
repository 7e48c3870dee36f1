"""The official `openai` Python SDK's Azure client against the sandbox's Azure
dialect, unchanged: the dated API (`/openai/...?api-version=`, `api-key`
header) and the v1 API (`/openai/v1`, Bearer), deployment names as models,
no expiry. Run by tests/sandbox.rs with SANDBOX_URL / SANDBOX_KEY set."""
import io
import json
import os
import time

import openai
from openai import AzureOpenAI, OpenAI

base, key = os.environ["SANDBOX_URL"], os.environ["SANDBOX_KEY"]
c = AzureOpenAI(azure_endpoint=base + "/azure", api_key=key, api_version="2024-10-21", max_retries=0)
deployment = "gpt-4o-mini-batch"
data = "\n".join(
    json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
                "body": {"model": deployment, "messages": [{"role": "user", "content": f"hi {i}"}]}})
    for i in range(3)
) + "\n"
f = c.files.create(file=("in.jsonl", io.BytesIO(data.encode())), purpose="batch")
assert f.purpose == "batch" and f.bytes == len(data), f
b = c.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
assert b.status == "validating" and b.expires_at is None, b
deadline = time.time() + 30
while b.status not in ("completed", "failed", "cancelled", "expired"):
    assert time.time() < deadline, b
    time.sleep(0.1)
    b = c.batches.retrieve(b.id)
assert b.status == "completed" and b.model == deployment, b
assert b.request_counts.total == 3 and b.request_counts.completed == 3, b
lines = [json.loads(l) for l in c.files.content(b.output_file_id).text.splitlines()]
assert sorted(l["custom_id"] for l in lines) == ["r0", "r1", "r2"], lines
assert lines[0]["response"]["body"]["model"] == deployment, lines[0]

# The same resource through the v1 API, with the key as a Bearer token.
v1 = OpenAI(base_url=base + "/azure/openai/v1", api_key=key, max_retries=0)
assert b.id in [x.id for x in v1.batches.list(limit=10).data]
# The Azure resource is not the OpenAI account: its batches are its own.
other = OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
assert b.id not in [x.id for x in other.batches.list(limit=100).data]

try:
    c.batches.cancel(b.id)
    raise AssertionError("cancelling a completed batch must fail")
except openai.ConflictError as e:
    assert "Cannot cancel" in str(e), e
try:
    AzureOpenAI(azure_endpoint=base + "/azure", api_key="wrong", api_version="2024-10-21",
                max_retries=0).batches.list()
    raise AssertionError("a wrong key must be refused")
except openai.AuthenticationError:
    pass
print("openai SDK (Azure)", openai.__version__, "ok")
