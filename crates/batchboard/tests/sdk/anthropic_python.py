"""The official `anthropic` Python SDK against the sandbox's Anthropic dialect,
unchanged: Message Batches create, retrieve, list, results (from the
batch's results_url), cancel, delete, errors, and a direct message. Run by
tests/sandbox.rs with SANDBOX_URL / SANDBOX_KEY set."""
import os
import time

import anthropic
from anthropic import Anthropic

base, key = os.environ["SANDBOX_URL"], os.environ["SANDBOX_KEY"]
c = Anthropic(base_url=base + "/anthropic", api_key=key, max_retries=0)
model = "claude-sonnet-4-5"


def req(cid, content, role="user"):
    return {"custom_id": cid, "params": {"model": model, "max_tokens": 64,
                                         "messages": [{"role": role, "content": content}]}}


def ended(b):
    deadline = time.time() + 30
    while b.processing_status != "ended":
        assert time.time() < deadline, b
        time.sleep(0.1)
        b = c.messages.batches.retrieve(b.id)
    return b


b = c.messages.batches.create(requests=[req("r0", "hi 0"), req("r1", "hi 1"), req("bad", "x", role="system")])
assert b.id.startswith("msgbatch_") and b.type == "message_batch", b
assert b.processing_status == "in_progress" and b.request_counts.processing == 3, b
assert b.results_url is None and b.expires_at > b.created_at, b
b = ended(b)
counts = b.request_counts
assert (counts.succeeded, counts.errored, counts.processing) == (2, 1, 0), b
assert b.results_url and b.ended_at, b
results = {r.custom_id: r.result for r in c.messages.batches.results(b.id)}
assert sorted(results) == ["bad", "r0", "r1"], results
assert results["r0"].type == "succeeded", results
assert results["r0"].message.content[0].text == "echo: hi 0", results["r0"]
assert results["r0"].message.usage.output_tokens > 0, results["r0"]
assert results["bad"].type == "errored", results["bad"]
assert results["bad"].error.error.type == "invalid_request_error", results["bad"]
assert [x.id for x in c.messages.batches.list(limit=1).data] == [b.id]

# Cancel: the requests not yet run end as canceled.
many = c.messages.batches.create(requests=[req(f"m{i}", f"n {i}") for i in range(3000)])
canceling = c.messages.batches.cancel(many.id)
assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at, canceling
many = ended(canceling)
assert many.request_counts.canceled > 0, many
kinds = {r.result.type for r in c.messages.batches.results(many.id)}
assert "canceled" in kinds, kinds
try:
    c.messages.batches.cancel(b.id)
    raise AssertionError("cancelling an ended batch must fail")
except anthropic.BadRequestError:
    pass

# Bad input is refused whole, saying where.
try:
    c.messages.batches.create(requests=[req("ok", "x"), req("no spaces", "x")])
    raise AssertionError("a bad custom_id must be refused")
except anthropic.BadRequestError as e:
    assert "requests.1.custom_id" in str(e), e

assert c.messages.batches.delete(b.id).type == "message_batch_deleted"
try:
    c.messages.batches.retrieve(b.id)
    raise AssertionError("a deleted batch must be gone")
except anthropic.NotFoundError:
    pass
try:
    Anthropic(base_url=base + "/anthropic", api_key="wrong", max_retries=0).messages.batches.list()
    raise AssertionError("a wrong key must be refused")
except anthropic.AuthenticationError:
    pass
reply = c.messages.create(model=model, max_tokens=10, messages=[{"role": "user", "content": "direct"}])
assert reply.content[0].text == "echo: direct", reply
print("anthropic SDK", anthropic.__version__, "ok")
