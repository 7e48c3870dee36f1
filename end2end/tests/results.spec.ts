import { expect, test, type Page } from "./fixtures";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { dataDir } from "./accounts";

/** `batchboard example-file`: a valid chat file; every `failEvery`-th
 * request has empty messages, which the upstream refuses. Returns the path
 * and the custom_ids made to fail. */
function example(name: string, requests: number, megabytes: number, failEvery?: number) {
  const out = join(dataDir(), name);
  const args = ["example-file", "--requests", String(requests), "--megabytes", String(megabytes), "--out", out];
  if (failEvery) args.push("--fail-every", String(failEvery));
  const failing = execFileSync(process.env.BATCHBOARD_BIN!, args, { encoding: "utf8" }).split("\n").filter(Boolean);
  return { path: out, failing };
}

async function hydrated(page: Page) {
  await page.locator('body[data-hydrated="true"]').waitFor();
}

test.describe.configure({ mode: "serial" });

// The 200 MB file goes when this file's tests are done: runs on one
// machine would otherwise fill its disk, one copy each.
test.afterAll(() => rmSync(join(dataDir(), "big.jsonl"), { force: true }));

test("a good 200 MB file is checked in the browser with visible progress, before any upload", async ({ page }) => {
  test.setTimeout(240_000);
  const { path } = example("big.jsonl", 50_000, 200);
  await page.goto("/batches/new");
  await hydrated(page);
  const uploads: string[] = [];
  page.on("request", (r) => {
    if (r.method() === "POST" && r.url().endsWith("/api/batches")) uploads.push(r.url());
  });
  await page.getByTestId("file").setInputFiles(path);
  const progress = page.getByTestId("check-progress");
  await expect(progress).toBeVisible();
  await expect(progress).toContainText(/Checking… \d+% of 202\.6 MB/);
  // The page stays responsive while it checks: a click elsewhere is
  // handled at once, while the check goes on.
  await page.getByTestId("add-meta").click();
  await expect(page.getByTestId("meta-key")).toHaveCount(2);
  await expect(progress).toBeVisible();

  const result = page.getByTestId("file-check");
  await expect(result).toHaveAttribute("data-ok", "true", { timeout: 200_000 });
  await expect(result).toHaveAttribute("data-requests", "50000");
  await expect(result).toContainText("50,000 requests to /v1/chat/completions, model gpt-4o-mini, 202.6 MB");
  // Tokens counted with the model's encoding on a sample, and a cost.
  await expect(page.getByTestId("check-tokens")).toContainText("o200k_base, extrapolated");
  await expect(page.getByTestId("check-cost")).toContainText("gpt-4o-mini");
  await expect(page.getByTestId("check-cost")).toContainText("output at most");
  await expect(page.getByTestId("create")).toBeEnabled();
  expect(uploads).toEqual([]);
  // The WASM is whatever target/site holds (debug under make test); make bench times the release build.
  console.log(`in-browser check of 202.6 MB (the WASM in target/site): ${await result.getAttribute("data-ms")} ms`);
});

test("warnings do not block: a file without output limits can still be created", async ({ page }) => {
  const line = (i: number) =>
    JSON.stringify({ custom_id: `w-${i}`, method: "POST", url: "/v1/chat/completions", body: { model: "gpt-4o-mini", messages: [{ role: "user", content: `hi ${i}` }] } });
  await page.goto("/batches/new");
  await hydrated(page);
  await page.getByTestId("file").setInputFiles({ name: "nolimit.jsonl", mimeType: "application/jsonl", buffer: Buffer.from([0, 1, 2].map(line).join("\n") + "\n") });
  await expect(page.getByTestId("check-warnings")).toContainText("3 requests set no output token limit (first at line 1)");
  await expect(page.getByTestId("check-cost")).toContainText("output cost depends on the answers");
  await expect(page.getByTestId("create")).toBeEnabled();
});

test("a finished batch's results: table, failure filter, merged CSV, and a retry of exactly the failures", async ({ page }) => {
  test.setTimeout(120_000);
  const { path, failing } = example("with-failures.jsonl", 40, 0.05, 5);
  expect(failing.length).toBe(8);
  await page.goto("/batches/new");
  await hydrated(page);
  await page.getByTestId("file").setInputFiles(path);
  await expect(page.getByTestId("file-check")).toHaveAttribute("data-ok", "true");
  await page.getByTestId("create").click();
  await expect(page).toHaveURL(/\/batches\/batch_[0-9a-f]+$/);
  const originalId = page.url().split("/").pop()!;
  await expect(page.getByTestId("status")).toHaveText("completed", { timeout: 60_000 });

  const results = page.getByTestId("results");
  const rows = results.getByTestId("result-row");
  await expect(results.getByTestId("results-summary")).toHaveText("32 succeeded, 8 failed, 0 never ran");
  await expect(rows).toHaveCount(25);
  await expect(rows.first()).toHaveAttribute("data-custom-id", "req-000000");
  await expect(rows.first()).toContainText("echo:");
  await results.getByTestId("results-next").click();
  await expect(rows).toHaveCount(15);

  await results.getByTestId("show-failed").click();
  await expect(rows).toHaveCount(8);
  const shown = await rows.evaluateAll((els) => els.map((e) => e.getAttribute("data-custom-id")));
  expect(shown).toEqual(failing);
  expect(await rows.evaluateAll((els) => els.every((e) => e.getAttribute("data-outcome") === "failed"))).toBe(true);
  await expect(rows.first()).toContainText("invalid_request_error");
  await expect(results.getByTestId("error-group")).toHaveText(/invalid_request_error × 8/);

  // The merged CSV, as a real browser download.
  const [download] = await Promise.all([page.waitForEvent("download"), results.getByTestId("download-merged-csv").click()]);
  expect(download.suggestedFilename()).toBe(`${originalId}_merged.csv`);
  const csv = readFileSync(await download.path(), "utf8").trim().split("\n");
  expect(csv.length).toBe(41);
  expect(csv[0]).toBe("line,custom_id,outcome,status_code,answer,embedding_dimensions,error_code,error_message,input_tokens,output_tokens,total_tokens");
  const failedRows = csv.slice(1).filter((l) => l.split(",")[2] === "failed").map((l) => l.split(",")[1]);
  expect(failedRows).toEqual(failing);

  // Retry: a new batch made of exactly the failed requests, linked back.
  await results.getByTestId("retry-failed").click();
  await expect(page).not.toHaveURL(new RegExp(originalId));
  await expect(page.getByTestId("retry-of")).toContainText(originalId);
  const href = await page.getByTestId("download-input").getAttribute("href");
  const input = (await (await page.request.get(href!)).text()).trim().split("\n").map((l) => JSON.parse(l).custom_id);
  expect(input).toEqual(failing);
});
