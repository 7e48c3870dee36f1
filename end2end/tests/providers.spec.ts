import { expect, test } from "./fixtures";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signIn } from "./accounts";
import { OwnServer } from "./servers";

// A dashboard with three upstreams from an upstreams file and no other: the
// sandbox's Azure and Anthropic dialects and its OpenAI one with small
// limits (a `batchboard sandbox` of their own, reached over HTTP like any
// provider).
const KEY = "sk-e2e-providers";
const sandboxPort = Number(process.env.E2E_PORT ?? 3300) + 20;
process.env.E2E_PROVIDERS_KEY = KEY;
const own = new OwnServer(21, ["--upstreams-file", join(tmpdir(), "batchboard-e2e-upstreams.toml"), "--watch-interval-ms", "300"]);

let sandbox: ChildProcess | undefined;
let server: ChildProcess | undefined;

test.use({ storageState: { cookies: [], origins: [] }, baseURL: own.base });

test.beforeAll(async () => {
  const sbDir = mkdtempSync(join(tmpdir(), "batchboard-e2e-sandbox-"));
  sandbox = spawn(process.env.BATCHBOARD_BIN!, ["sandbox", "--addr", `127.0.0.1:${sandboxPort}`, "--api-key", KEY,
    "--data-dir", sbDir, "--sandbox-rps", "20", "--sandbox-validation-ms", "200", "--sandbox-finalizing-ms", "200"],
    { stdio: "ignore", env: { ...process.env, RUST_LOG: "warn" } });
  const sb = `http://127.0.0.1:${sandboxPort}`;
  writeFileSync(join(tmpdir(), "batchboard-e2e-upstreams.toml"), `
[[upstream]]
name = "azure"
kind = "azure"
base_url = "${sb}/azure"
api_version = "2024-10-21"
key_env = "E2E_PROVIDERS_KEY"
deployments = ["gpt-4o-mini-batch"]

[[upstream]]
name = "claude"
kind = "anthropic"
base_url = "${sb}/anthropic"
key_env = "E2E_PROVIDERS_KEY"

[[upstream]]
name = "small"
kind = "openai-compatible"
base_url = "${sb}/v1"
key_env = "E2E_PROVIDERS_KEY"
limits = { max_requests = 2, endpoints = ["/v1/chat/completions", "/v1/embeddings"] }
`);
  server = own.start(OwnServer.dataDir("batchboard-providers-", [["op", "operator"]]));
  await own.up();
});

test.afterAll(() => {
  server?.kill();
  sandbox?.kill();
});

const chat = (id: string, model: string, extra = "") =>
  JSON.stringify({ custom_id: id, method: "POST", url: "/v1/chat/completions",
    body: { model, messages: [{ role: "system", content: "Be brief." }, { role: "user", content: `hi ${id}` }], ...(extra ? JSON.parse(extra) : {}) } });

test("a batch on Azure: chosen upstream, created, completed, results from Azure", async ({ page }) => {
  await signIn(page, "op");
  await page.goto("/batches/new");
  await page.locator('body[data-hydrated="true"]').waitFor();
  await page.getByTestId("upstream-choice").selectOption("azure");
  const lines = ["a", "b", "c"].map((id) => chat(id, "gpt-4o-mini-batch", '{"max_completion_tokens": 50}')).join("\n") + "\n";
  await page.getByTestId("file").setInputFiles({ name: "azure.jsonl", mimeType: "application/jsonl", buffer: Buffer.from(lines) });
  await expect(page.getByTestId("file-check")).toHaveAttribute("data-ok", "true");
  await page.getByTestId("create").click();
  await expect(page).toHaveURL(/\/batches\/azure\.batch_[0-9a-f]+$/);
  await expect(page.getByTestId("batch-upstream")).toHaveText("azure (azure)");
  await expect(page.getByTestId("status")).toHaveText("completed", { timeout: 60_000 });
  const results = page.getByTestId("results");
  await expect(results.getByTestId("results-summary")).toHaveText("3 succeeded, 0 failed, 0 never ran");
  await expect(results.getByTestId("result-row").first()).toContainText("echo: hi");
});

test("a batch on Anthropic: chat lines converted in the browser, max_tokens asked for, results normalised", async ({ page, context }) => {
  await signIn(page, "op");
  await page.goto("/batches/new");
  await page.locator('body[data-hydrated="true"]').waitFor();
  await page.getByTestId("upstream-choice").selectOption("claude");
  // Anthropic has no endpoint, window or metadata to choose; max_tokens instead.
  await expect(page.getByTestId("endpoint")).toBeHidden();
  await expect(page.getByTestId("max-tokens")).toBeVisible();
  const lines = ["x", "y"].map((id) => chat(id, "claude-sonnet-4-5")).join("\n") + "\n";
  await page.getByTestId("file").setInputFiles({ name: "claude.jsonl", mimeType: "application/jsonl", buffer: Buffer.from(lines) });
  await expect(page.getByTestId("file-check")).toHaveAttribute("data-ok", "true");
  // The first request as it will be sent: the system message moved out.
  const first = page.getByTestId("converted-first");
  await expect(first).toContainText('"system": "Be brief."');
  await expect(first).toContainText('"custom_id": "x"');
  await expect(page.getByTestId("create")).toBeDisabled();
  await expect(page.getByTestId("create-blocked")).toContainText("max_tokens");
  await page.getByTestId("max-tokens").fill("64");
  await expect(page.getByTestId("create")).toBeEnabled();
  await page.getByTestId("create").click();
  await expect(page).toHaveURL(/\/batches\/claude\.msgbatch_[0-9a-f]+$/);
  await expect(page.getByTestId("batch-upstream")).toHaveText("claude (anthropic)");
  await expect(page.getByTestId("status")).toHaveText("completed", { timeout: 60_000 });
  const results = page.getByTestId("results");
  await expect(results.getByTestId("results-summary")).toHaveText("2 succeeded, 0 failed, 0 never ran");
  await expect(results.getByTestId("result-row").first()).toContainText("echo: hi");
  // Opened directly, as a shared link is, it hydrates every time (the
  // fixture fails the test on any console error).
  const link = new URL(page.url()).pathname;
  for (let i = 0; i < 10; i++) {
    const fresh = await context.newPage();
    await fresh.goto(link);
    await fresh.locator('body[data-hydrated="true"]').waitFor();
    await expect(fresh.getByTestId("batch-upstream")).toHaveText("claude (anthropic)");
    await fresh.close();
  }

  // One table for both upstreams, with a column and a filter for them.
  await page.goto("/");
  const rows = page.getByTestId("batch-row");
  await expect(rows).toHaveCount(2);
  await expect(page.getByTestId("row-upstream")).toHaveText(["claude", "azure"]);
  await expect(page.getByTestId("footer-upstreams")).toHaveText("azureclaudesmall");
  await page.getByTestId("filter-upstream").selectOption("azure");
  await page.getByTestId("apply-filters").click();
  await expect(page).toHaveURL(/upstream=azure/);
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toHaveAttribute("data-id", /^azure\./);

  // The Upstreams page: kinds, where, what each takes, running batches, no key.
  await page.goto("/upstreams");
  const listed = page.getByTestId("upstream-row");
  await expect(listed).toHaveCount(3);
  await expect(listed.nth(0)).toContainText("azure");
  await expect(listed.nth(0).getByTestId("upstream-takes")).toHaveText(
    "/v1/responses, /v1/chat/completions, /v1/embeddings · windows 24h · deployments gpt-4o-mini-batch");
  await expect(listed.nth(1)).toContainText("anthropic");
  await expect(listed.nth(2).getByTestId("upstream-takes")).toHaveText(
    "/v1/chat/completions, /v1/embeddings · windows 24h · at most 2 requests");
  await expect(page.locator("body")).not.toContainText(KEY);

  // The footer's connection check asks each upstream, naming it.
  await page.locator('body[data-hydrated="true"]').waitFor();
  await page.getByTestId("check-upstream").click();
  await expect(page.getByTestId("check-result")).toContainText(/azure: Reachable \(\d+ ms\)/);
  await expect(page.getByTestId("check-result")).toContainText(/claude: Reachable \(\d+ ms\)/);
  await expect(page.getByTestId("check-result")).toContainText(/small: Reachable \(\d+ ms\)/);
});

test("the chosen upstream's limits, endpoints and deployments are checked in the browser before anything is sent", async ({ page }) => {
  await signIn(page, "op");
  await page.goto("/batches/new");
  await page.locator('body[data-hydrated="true"]').waitFor();
  const file = page.getByTestId("file");
  const blocked = page.getByTestId("create-blocked");
  const choose = (name: string, lines: string[]) =>
    file.setInputFiles({ name, mimeType: "application/jsonl", buffer: Buffer.from(lines.join("\n") + "\n") });
  const limited = (id: string, model: string) => chat(id, model, '{"max_completion_tokens": 20}');

  // Only the endpoints the upstream takes are offered.
  await page.getByTestId("upstream-choice").selectOption("small");
  await expect(page.getByTestId("endpoint").locator("option")).toHaveText(["/v1/chat/completions", "/v1/embeddings"]);
  // Three requests where two are taken: the file is fine, the upstream is not.
  await choose("three.jsonl", ["a", "b", "c"].map((id) => limited(id, "gpt-4o-mini")));
  await expect(page.getByTestId("file-check")).toHaveAttribute("data-ok", "true");
  await expect(blocked).toHaveText("The file has 3 requests; the upstream small takes at most 2 in one batch. Split the file or choose another upstream.");
  await expect(page.getByTestId("create")).toBeDisabled();
  // Too many for one batch is not too many for a job.
  await expect(page.getByTestId("create-job")).toHaveText("Create as a job of 2 batches");
  await choose("two.jsonl", ["a", "b"].map((id) => limited(id, "gpt-4o-mini")));
  await expect(page.getByTestId("create-job")).toHaveCount(0);
  await expect(page.getByTestId("file-check")).toHaveAttribute("data-requests", "2");
  await expect(blocked).toHaveCount(0);
  await expect(page.getByTestId("create")).toBeEnabled();

  // Azure: a model that is not one of its deployments, an endpoint it lacks.
  await page.getByTestId("upstream-choice").selectOption("azure");
  await expect(page.getByTestId("endpoint").locator("option")).toHaveText(["/v1/responses", "/v1/chat/completions", "/v1/embeddings"]);
  await choose("model.jsonl", [limited("a", "gpt-4o")]);
  await expect(blocked).toContainText("gpt-4o, which is not a deployment of the upstream azure (gpt-4o-mini-batch)");
  await expect(page.getByTestId("create")).toBeDisabled();
  const moderation = JSON.stringify({ custom_id: "m", method: "POST", url: "/v1/moderations", body: { model: "gpt-4o-mini-batch", input: "hi" } });
  await choose("moderation.jsonl", [moderation]);
  await expect(page.getByTestId("file-check")).toHaveAttribute("data-ok", "true");
  await expect(blocked).toContainText("The upstream azure takes /v1/responses, /v1/chat/completions, /v1/embeddings, not /v1/moderations");
  await expect(page.getByTestId("create")).toBeDisabled();
});

test("a file too large for one batch becomes a job: created from New batch, watched to the end, one merged result", async ({ page }) => {
  await signIn(page, "op");
  await page.goto("/batches/new");
  await page.locator('body[data-hydrated="true"]').waitFor();
  await page.getByTestId("upstream-choice").selectOption("small");
  const lines = ["j1", "j2", "j3", "j4", "j5"].map((id) => chat(id, "gpt-4o-mini", '{"max_completion_tokens": 20}'));
  await page.getByTestId("file").setInputFiles({ name: "five.jsonl", mimeType: "application/jsonl", buffer: Buffer.from(lines.join("\n") + "\n") });
  await expect(page.getByTestId("file-check")).toHaveAttribute("data-ok", "true");
  await expect(page.getByTestId("create")).toBeDisabled();
  await page.getByTestId("create-job").click();
  await expect(page).toHaveURL(/\/jobs\/job_[0-9a-f]+$/);
  await expect(page.getByTestId("job-status")).toHaveText("completed", { timeout: 60_000 });
  const counts = page.getByTestId("job-counts");
  await expect(counts).toHaveText("5 succeeded, 0 failed, 0 to run, of 5");
  await expect(page.getByTestId("job-usage")).toHaveText(/^[1-9][\d,]* input and [1-9][\d,]* output tokens so far \(at batch prices: (< )?\$[\d.]+\)$/);
  // Opened directly, as a shared link is: rendered on the server, hydrated.
  await page.reload();
  await page.locator('body[data-hydrated="true"]').waitFor();
  await expect(page.getByTestId("job-status")).toHaveText("completed");
  const parts = page.getByTestId("part-row");
  await expect(parts).toHaveCount(3);
  await expect(parts.nth(0)).toHaveAttribute("data-state", "done");
  // Each part's batch is a batch like any other, linked from its row.
  await parts.nth(0).getByRole("link").click();
  await expect(page).toHaveURL(/\/batches\/small\.batch_/);
  await expect(page.getByTestId("status")).toHaveText("completed");
  await expect(page.getByTestId("part-of-job")).toContainText(/^Part 1 of the job job_[0-9a-f]+$/);
  await page.goBack();
  // One merged result, in input order.
  const href = await page.getByTestId("job-merged-jsonl").getAttribute("href");
  const merged = await (await page.request.get(href!)).text();
  const rows = merged.trim().split("\n").map((l) => JSON.parse(l));
  expect(rows.map((r) => r.custom_id)).toEqual(["j1", "j2", "j3", "j4", "j5"]);
  expect(rows.every((r) => r.outcome === "ok")).toBe(true);
  // Its batches, as a group in the table.
  await page.getByTestId("job-batches").click();
  await expect(page.getByTestId("batch-row")).toHaveCount(3);
  await expect(page.locator(".chip-job").first()).toHaveText(/^batchboard_job=job_/);
  // Listed under Jobs.
  await page.getByRole("link", { name: "Jobs" }).click();
  await expect(page.getByTestId("job-row")).toHaveCount(1);
  await expect(page.getByTestId("job-row").getByTestId("job-status")).toHaveText("completed");
});
