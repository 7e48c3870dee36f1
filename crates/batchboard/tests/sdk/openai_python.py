"""The official `openai` Python SDK against the sandbox, unchanged: files,
batches, listing, content, deletion, a direct model call, and error mapping.
Run by tests/sandbox.rs with OPENAI_BASE_URL / OPENAI_API_KEY set."""
import io
import json
import time

import openai
from openai import OpenAI

c = OpenAI(max_retries=0)
data = "\n".join(
    json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"hi {i}"}]}})
    for i in range(3)
) + "\n"
f = c.files.create(file=("in.jsonl", io.BytesIO(data.encode())), purpose="batch")
assert f.purpose == "batch" and f.bytes == len(data) and f.filename == "in.jsonl", f
b = c.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                     completion_window="24h", metadata={"k": "v"})
assert b.status == "validating", b
deadline = time.time() + 30
while b.status not in ("completed", "failed", "cancelled", "expired"):
    assert time.time() < deadline, b
    time.sleep(0.1)
    b = c.batches.retrieve(b.id)
assert b.status == "completed", b
assert b.request_counts.total == 3 and b.request_counts.completed == 3, b
assert b.usage.total_tokens > 0 and b.metadata == {"k": "v"}, b
lines = [json.loads(l) for l in c.files.content(b.output_file_id).text.splitlines()]
assert sorted(l["custom_id"] for l in lines) == ["r0", "r1", "r2"], lines
page = c.batches.list(limit=1)
assert [x.id for x in page.data] == [b.id], page
assert f.id in [x.id for x in c.files.list(purpose="batch")]
assert c.files.delete(f.id).deleted
reply = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "direct"}])
assert reply.choices[0].message.content == "echo: direct", reply
try:
    c.batches.cancel(b.id)
    raise AssertionError("cancelling a completed batch must fail")
except openai.ConflictError as e:
    assert "Cannot cancel" in str(e), e
try:
    c.batches.retrieve("batch_missing")
    raise AssertionError("a missing batch must be 404")
except openai.NotFoundError:
    pass
try:
    OpenAI(api_key="sk-wrong", max_retries=0).batches.list()
    raise AssertionError("a wrong key must be refused")
except openai.AuthenticationError:
    pass
print("openai SDK", openai.__version__, "ok")
