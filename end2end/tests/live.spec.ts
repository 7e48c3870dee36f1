import { expect, request as apiRequest, test } from "./fixtures";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { addUser, signIn } from "./accounts";

// A server of this test's own, so that it can be killed and started again.
const port = Number(process.env.E2E_PORT ?? 3300) + 7;
const base = `http://127.0.0.1:${port}`;
const root = resolve(__dirname, "..", "..");
const bin = process.env.BATCHBOARD_BIN!;

function start(dataDir: string): ChildProcess {
  const env: Record<string, string | undefined> = { ...process.env, RUST_LOG: "warn" };
  delete env.OPENAI_API_KEY;
  delete env.BATCHBOARD_UPSTREAM_URL;
  return spawn(
    bin,
    ["serve", "--addr", `127.0.0.1:${port}`, "--data-dir", dataDir, "--site-root", join(root, "target/site"),
      "--sandbox-rps", "20", "--sandbox-validation-ms", "200", "--sandbox-finalizing-ms", "200",
      "--watch-interval-ms", "500"],
    { env, stdio: "ignore" },
  );
}

/** A fresh data directory with the account "op" (operator). */
function withOperator(prefix: string): string {
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  addUser("op", "operator", dataDir);
  return dataDir;
}

async function up() {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("server did not start");
}

test.use({ storageState: { cookies: [], origins: [] }, baseURL: base });

test("the stream survives a server restart: the page says so, then catches up", async ({ page, allowConsole }) => {
  // The server stops under the open stream on purpose.
  allowConsole(/ERR_INCOMPLETE_CHUNKED_ENCODING|ERR_CONNECTION_REFUSED/);
  const dataDir = withOperator("batchboard-live-");
  let server = start(dataDir);
  try {
    await up();
    await signIn(page, "op");
    await expect(page).toHaveURL(/\/$/);
    await page.locator('body[data-hydrated="true"]').waitFor();
    await expect(page.getByTestId("live")).toHaveAttribute("data-state", "live");
    await page.evaluate(() => ((window as any).__noReload = true));

    server.kill("SIGKILL");
    await expect(page.getByTestId("live")).toHaveAttribute("data-state", "reconnecting");
    await expect(page.getByTestId("live")).toContainText("reconnecting");

    server = start(dataDir);
    await up();
    await expect(page.getByTestId("live")).toHaveAttribute("data-state", "live", { timeout: 15_000 });

    // A batch created now shows up in the open page, which never reloaded.
    const api = await apiRequest.newContext({ baseURL: base, storageState: await page.context().storageState() });
    const line = JSON.stringify({ custom_id: "a", method: "POST", url: "/v1/chat/completions",
      body: { model: "m", messages: [{ role: "user", content: "hi" }] } });
    const resp = await api.post("/api/batches", {
      headers: { origin: base },
      multipart: { endpoint: "/v1/chat/completions", file: { name: "live.jsonl", mimeType: "application/jsonl", buffer: Buffer.from(line + "\n") } },
    });
    expect(resp.status(), await resp.text()).toBe(200);
    const { id } = await resp.json();
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
      await signIn(page, "op");
      await page.locator('body[data-hydrated="true"]').waitFor();
      await expect(page.getByTestId("live")).toHaveAttribute("data-state", "live");
      await page.getByTestId("notify-toggle").click();
      await expect(page.getByTestId("notify-toggle")).toHaveText("Notifications on");
      // Going back to /login while signed in lands on the table again.
      await page.goto("/login?next=/");
      await expect(page).toHaveURL(/\/$/);
      await page.locator('body[data-hydrated="true"]').waitFor();
      await expect(page.getByTestId("notify-toggle")).toHaveText("Notifications on");

      const api = await apiRequest.newContext({ baseURL: base, storageState: await page.context().storageState() });
      const lines = Array.from({ length: 10 }, (_, i) => JSON.stringify({ custom_id: `n${i}`, method: "POST",
        url: "/v1/chat/completions", body: { model: "m", messages: [{ role: "user", content: "hi" }] } })).join("\n");
      const resp = await api.post("/api/batches", {
        headers: { origin: base },
        multipart: { endpoint: "/v1/chat/completions", file: { name: "n.jsonl", mimeType: "application/jsonl", buffer: Buffer.from(lines) } },
      });
      expect(resp.status(), await resp.text()).toBe(200);
      await expect.poll(() => page.evaluate(() => (window as any).__notes), { timeout: 20_000 })
        .toEqual([{ title: "Batch completed", body: "10 of 10 requests completed, 0 failed" }]);
      await api.dispose();
    } finally {
      server.kill("SIGKILL");
    }
  });
});
