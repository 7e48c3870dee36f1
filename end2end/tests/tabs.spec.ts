import { expect, test, type BrowserContext, type Page } from "./fixtures";
import { PASSWORD, signIn } from "./accounts";

// Plain HTTP/1.1, as the default deployment: a browser opens at most six
// connections to a host, so tabs must share one event stream.

const TABS = 12;

function line(i: number) {
  return JSON.stringify({
    custom_id: `tabs-${i}`,
    method: "POST",
    url: "/v1/chat/completions",
    body: { model: "gpt-4o-mini", messages: [{ role: "user", content: `tab ${i}` }] },
  });
}

/** Open event streams on the server, from its Prometheus metrics. */
async function openStreams(page: Page): Promise<number> {
  const text = await (await page.request.get("/metrics")).text();
  const m = text.match(/^batchboard_event_streams (\d+)/m);
  expect(m, "batchboard_event_streams in /metrics").not.toBeNull();
  return Number(m![1]);
}

async function openTabs(context: BrowserContext, n: number): Promise<Page[]> {
  const tabs: Page[] = [];
  for (let i = 0; i < n; i++) {
    const p = await context.newPage();
    // Every tab must load (the seventh never did with a stream per tab).
    await p.goto("/", { timeout: 10_000 });
    await p.locator('body[data-hydrated="true"]').waitFor({ timeout: 10_000 });
    tabs.push(p);
  }
  return tabs;
}

async function createBatch(page: Page, tag: string) {
  const resp = await page.request.post("/api/batches", {
    headers: { origin: new URL(page.url()).origin },
    multipart: {
      endpoint: "/v1/chat/completions",
      metadata: JSON.stringify({ tag }),
      file: { name: `${tag}.jsonl`, mimeType: "application/jsonl", buffer: Buffer.from(line(0) + "\n" + line(1) + "\n") },
    },
  });
  expect(resp.status(), await resp.text()).toBe(200);
  return ((await resp.json()) as { id: string }).id;
}

/** Every tab loads, shows "Live", and shows a batch made after they opened. */
async function allLive(context: BrowserContext, tag: string) {
  const tabs = await openTabs(context, TABS);
  for (const t of tabs) await expect(t.getByTestId("live")).toHaveAttribute("data-state", "live");
  // One stream for the whole browser.
  await expect.poll(() => openStreams(tabs[0])).toBe(1);
  const id = await createBatch(tabs[0], tag);
  for (const t of tabs) await expect(t.locator(`[data-testid="batch-row"][data-id="${id}"]`)).toBeVisible();

  // The leader goes: another tab takes the stream over, and changes still
  // reach every remaining tab.
  await tabs[0].close();
  const rest = tabs.slice(1);
  await expect.poll(() => openStreams(rest[0]), { timeout: 10_000 }).toBe(1);
  const next = await createBatch(rest[0], `${tag}-after`);
  for (const t of rest) await expect(t.locator(`[data-testid="batch-row"][data-id="${next}"]`)).toBeVisible();
  for (const t of rest) await t.close();
}

test("12 tabs of one browser all load and update live over one stream (Web Locks)", async ({ context }) => {
  test.setTimeout(120_000);
  await allLive(context, "locks");
});

test("12 tabs share one stream without Web Locks too (plain HTTP on another host: a localStorage lease)", async ({ context }) => {
  test.setTimeout(120_000);
  // As on http://some-host: Web Locks exist only in secure contexts.
  await context.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, "locks", { get: () => undefined });
  });
  await allLive(context, "lease");
});

test.describe("a session of its own", () => {
  // Signing out here must not end the session the other tests use.
  test.use({ storageState: { cookies: [], origins: [] } });

  test("signing out ends the stream: every open tab says so and links back to its page", async ({ context, allowConsole }) => {
    // The streams that follow the sign-out are refused (401) on purpose.
    allowConsole(/401|EventSource/);
    const first = await context.newPage();
    await signIn(first, "op");
    await expect(first).toHaveURL(/\/$/);
    const tabs = await openTabs(context, 3);
    await tabs[2].goto("/batches/new");
    await tabs[2].locator('body[data-hydrated="true"]').waitFor();
    for (const t of tabs) await expect(t.getByTestId("live")).toHaveAttribute("data-state", "live");
    // Signed out in another tab (its sign-out button).
    await first.getByTestId("sign-out").click();
    await expect(first).toHaveURL(/\/login/);
    for (const t of tabs) await expect(t.getByTestId("live")).toHaveAttribute("data-state", "signed-out");
    await tabs[2].getByTestId("sign-in-again").click();
    await expect(tabs[2]).toHaveURL(/\/login\?next=%2Fbatches%2Fnew$/);
    await tabs[2].getByTestId("username").fill("op");
    await tabs[2].getByTestId("password").fill(PASSWORD);
    await tabs[2].getByTestId("sign-in").click();
    await expect(tabs[2]).toHaveURL(/\/batches\/new$/);
  });
});
