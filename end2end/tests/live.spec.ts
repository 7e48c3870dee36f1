import { expect, request as apiRequest, test, type APIRequestContext, type Page } from "./fixtures";
import { signIn } from "./accounts";
import { OwnServer } from "./servers";

// A server of this test's own, so that it can be killed and started again.
const own = new OwnServer(7, ["--watch-interval-ms", "500"]);
const base = own.base;
const start = (dataDir: string) => own.start(dataDir);
const up = () => own.up();
const withOperator = (prefix: string) => OwnServer.dataDir(prefix, [["op", "operator"]]);

test.use({ storageState: { cookies: [], origins: [] }, baseURL: base });

/** Signed in as the operator on the table, hydrated, its stream live. */
async function signedInLive(page: Page) {
  await signIn(page, "op");
  await expect(page).toHaveURL(/\/$/);
  await page.locator('body[data-hydrated="true"]').waitFor();
  await expect(page.getByTestId("live")).toHaveAttribute("data-state", "live");
}

/** The page's session, for calls of the API beside it. */
async function apiOf(page: Page, at = base) {
  return apiRequest.newContext({ baseURL: at, storageState: await page.context().storageState() });
}

/** Creates a batch of `n` chat requests as a script would; its id. */
async function createBatch(api: APIRequestContext, n: number, at = base): Promise<string> {
  const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ custom_id: `r${i}`, method: "POST",
    url: "/v1/chat/completions", body: { model: "m", messages: [{ role: "user", content: "hi" }] } })).join("\n");
  const resp = await api.post("/api/batches", {
    headers: { origin: at },
    multipart: { endpoint: "/v1/chat/completions", file: { name: "requests.jsonl", mimeType: "application/jsonl", buffer: Buffer.from(lines + "\n") } },
  });
  expect(resp.status(), await resp.text()).toBe(200);
  return (await resp.json()).id as string;
}

test("the stream survives a server restart: the page says so, then catches up", async ({ page, allowConsole }) => {
  // The server stops under the open stream on purpose.
  allowConsole(/ERR_INCOMPLETE_CHUNKED_ENCODING|ERR_CONNECTION_REFUSED/);
  const dataDir = withOperator("batchboard-live-");
  let server = start(dataDir);
  try {
    await up();
    await signedInLive(page);
    await page.evaluate(() => ((window as any).__noReload = true));

    server.kill("SIGKILL");
    await expect(page.getByTestId("live")).toHaveAttribute("data-state", "reconnecting");
    await expect(page.getByTestId("live")).toContainText("reconnecting");

    server = start(dataDir);
    await up();
    await expect(page.getByTestId("live")).toHaveAttribute("data-state", "live", { timeout: 15_000 });

    // A batch created now shows up in the open page, which never reloaded.
    const api = await apiOf(page);
    const id = await createBatch(api, 1);
    const row = page.locator(`[data-testid="batch-row"][data-id="${id}"]`);
    await expect(row.getByTestId("status")).toHaveText("completed", { timeout: 20_000 });
    expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
    // The tab title counts running batches; none are left.
    await expect(page).toHaveTitle("Batches · Batchboard");
    await api.dispose();
  } finally {
    server.kill("SIGKILL");
  }
});

test.describe("notifications", () => {
  test.use({ storageState: { cookies: [], origins: [] } });

  test("a batch I created finishing notifies me, once I turned it on", async ({ page }) => {
    // A stand-in for the browser's Notification API that records what is shown.
    await page.addInitScript(() => {
      (window as any).__notes = [];
      class RecordingNotification {
        constructor(title: string, opts?: { body?: string }) {
          (window as any).__notes.push({ title, body: opts?.body });
        }
        static get permission() { return "granted"; }
        static requestPermission() { return Promise.resolve("granted"); }
      }
      (window as any).Notification = RecordingNotification;
    });
    const dataDir = withOperator("batchboard-notify-");
    const server = start(dataDir);
    try {
      await up();
      await signedInLive(page);
      await page.getByTestId("notify-toggle").click();
      await expect(page.getByTestId("notify-toggle")).toHaveText("Notifications on");
      // Going back to /login while signed in lands on the table again.
      await page.goto("/login?next=/");
      await expect(page).toHaveURL(/\/$/);
      await page.locator('body[data-hydrated="true"]').waitFor();
      await expect(page.getByTestId("notify-toggle")).toHaveText("Notifications on");

      const api = await apiOf(page);
      await createBatch(api, 10);
      await expect.poll(() => page.evaluate(() => (window as any).__notes), { timeout: 20_000 })
        .toEqual([{ title: "Batch completed", body: "10 of 10 requests completed, 0 failed" }]);
      await api.dispose();
    } finally {
      server.kill("SIGKILL");
    }
  });
});

test("a change updates its row in place; the list is read again only when the view's rows can change", async ({ page }) => {
  const dataDir = withOperator("batchboard-inplace-");
  const server = start(dataDir);
  try {
    await up();
    await signedInLive(page);
    let reads = 0;
    page.on("request", (r) => { if (r.url().includes("/api/list_batches")) reads++; });
    const api = await apiOf(page);
    const create = (n: number) => createBatch(api, n);

    // A new batch: the list is read again, and its row appears.
    const id = await create(60);
    const row = page.locator(`[data-testid="batch-row"][data-id="${id}"]`);
    await expect(row).toBeVisible();
    await expect.poll(() => reads).toBeGreaterThan(0);
    const afterNew = reads;
    // Its progress and statuses then arrive in the row itself: no read.
    const seen = new Set<string>();
    await expect.poll(async () => {
      seen.add((await row.getByTestId("progress").textContent()) ?? "");
      return row.getByTestId("status").textContent();
    }, { timeout: 20_000, intervals: [50] }).toBe("completed");
    const partial = [...seen].filter((l) => /^[1-9]\d* \/ 60$/.test(l) && l !== "60 / 60");
    expect(partial.length, `progress seen: ${[...seen].join(", ")}`).toBeGreaterThan(0);
    await expect(row.getByTestId("progress")).toHaveText("60 / 60");
    expect(reads).toBe(afterNew);

    // A view filtered by status: a status change can move a batch in or
    // out of it, so there it reads the list again.
    await page.goto("/?status=in_progress");
    await page.locator('body[data-hydrated="true"]').waitFor();
    await expect(page.getByTestId("live")).toHaveAttribute("data-state", "live");
    const second = await create(60);
    const filtered = page.locator(`[data-testid="batch-row"][data-id="${second}"]`);
    await expect(filtered).toBeVisible({ timeout: 20_000 });
    await expect(filtered).toHaveCount(0, { timeout: 20_000 });
    await expect(page.locator(`[data-testid="batch-row"][data-id="${id}"]`)).toHaveCount(0);
    await api.dispose();
  } finally {
    server.kill("SIGKILL");
  }
});

test.describe("a change between the render and the stream", () => {
  // Batches stay `validating` for 3 s here, long enough to hold the page's
  // stream back until its batch has finished.
  const slow = new OwnServer(8, ["--watch-interval-ms", "300", "--sandbox-validation-ms", "3000"]);
  test.use({ baseURL: slow.base });

  test("a batch that finishes while its page loads shows finished once the stream opens", async ({ page }) => {
    const server = slow.start(OwnServer.dataDir("batchboard-missed-", [["op", "operator"]]));
    try {
      await slow.up();
      await signIn(page, "op");
      await expect(page).toHaveURL(/\/$/);
      const api = await apiOf(page, slow.base);
      const id = await createBatch(api, 2, slow.base);
      // The page's event stream waits until the batch has finished.
      let release = () => {};
      const held = new Promise<void>((r) => (release = r));
      await page.route("**/events", async (route) => {
        await held;
        await route.continue();
      });
      await page.goto(`/batches/${id}`);
      await page.locator('body[data-hydrated="true"]').waitFor();
      const status = page.getByTestId("status");
      await expect(status).not.toHaveAttribute("data-status", "completed");
      // The index has it finished (the table, filtered, as the server renders it).
      await expect.poll(async () => (await (await api.get("/?status=completed")).text()).includes(`data-id="${id}"`),
        { timeout: 20_000 }).toBe(true);
      // Past the watcher's round that passed the change on.
      await page.waitForTimeout(1_000);
      await expect(status).not.toHaveAttribute("data-status", "completed");
      release();
      // No later change will come: only the stream's version tells the
      // page what it missed.
      await expect(status).toHaveAttribute("data-status", "completed", { timeout: 10_000 });
      await api.dispose();
    } finally {
      server.kill("SIGKILL");
    }
  });
});
