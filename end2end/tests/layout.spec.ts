import { expect, test, type Page } from "./fixtures";
import { storageFor } from "./accounts";

// Every page fits the window at a laptop's and a phone's width: nothing
// wider than the viewport (the batch table scrolls inside its own box).
// Screenshots land in test-results/ for a person to look at (not in git).

const WIDTHS = [
  { name: "laptop", width: 1280, height: 800 },
  { name: "phone", width: 390, height: 844 },
];

async function fits(page: Page, path: string, shot: string) {
  await page.goto(path);
  await page.locator('body[data-hydrated="true"]').waitFor();
  const { scroll, inner } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    inner: window.innerWidth,
  }));
  await page.screenshot({ path: test.info().outputPath(`${shot}.png`), fullPage: true });
  expect(scroll, `${path}: page ${scroll}px wide in a ${inner}px window`).toBeLessThanOrEqual(inner);
}

async function finishedBatch(page: Page): Promise<string> {
  const lines = Array.from({ length: 6 }, (_, i) => JSON.stringify({
    custom_id: `layout-${i}`, method: "POST", url: "/v1/chat/completions",
    body: { model: "gpt-4o-mini", messages: [{ role: "user", content: `a longer question number ${i} about layouts` }] },
  })).join("\n") + "\n";
  await page.goto("/");
  const resp = await page.request.post("/api/batches", {
    headers: { origin: new URL(page.url()).origin },
    multipart: {
      endpoint: "/v1/chat/completions",
      metadata: JSON.stringify({ team: "research-and-development", purpose: "a rather long purpose for a batch" }),
      file: { name: "a-file-name-that-is-quite-long-for-a-table.jsonl", mimeType: "application/jsonl", buffer: Buffer.from(lines) },
    },
  });
  expect(resp.status(), await resp.text()).toBe(200);
  const { id } = await resp.json();
  await page.goto(`/batches/${id}`);
  await expect(page.getByTestId("status")).toHaveAttribute("data-status", "completed", { timeout: 60_000 });
  return id;
}

// A small job: one part, enough to lay out its page.
const jobLines = ["j1", "j2"].map((id) => JSON.stringify({ custom_id: id, method: "POST", url: "/v1/chat/completions",
  body: { model: "gpt-4o-mini", max_tokens: 5, messages: [{ role: "user", content: `hello ${id}` }] } })).join("\n") + "\n";

// In each language: Korean texts differ in length from English ones.
for (const lang of [{ code: "en", locale: "en-US" }, { code: "ko", locale: "ko-KR" }]) {
  test.describe(`in ${lang.code}`, () => {
    test.use({ locale: lang.locale });
    for (const w of WIDTHS) {
      test(`no page is wider than a ${w.width}px window (${w.name})`, async ({ page, allowConsole }) => {
        // The missing page answers 404 on purpose; the browser logs that.
        allowConsole(/status of 404/);
        await page.setViewportSize({ width: w.width, height: w.height });
        const id = await finishedBatch(page);
        await fits(page, "/", `${lang.code}-${w.name}-table`);
        await fits(page, "/?status=completed&sort=created&dir=asc", `${lang.code}-${w.name}-table-filtered`);
        await fits(page, `/batches/${id}`, `${lang.code}-${w.name}-batch`);
        await fits(page, "/batches/new", `${lang.code}-${w.name}-new`);
        const job = await page.request.post("/api/jobs", {
          headers: { origin: new URL(page.url()).origin },
          multipart: {
            endpoint: "/v1/chat/completions",
            file: { name: "a-job-file-name-that-is-quite-long-as-well.jsonl", mimeType: "application/jsonl", buffer: Buffer.from(jobLines) },
          },
        });
        expect(job.status(), await job.text()).toBe(200);
        const jobId = (await job.json()).id;
        await page.goto(`/jobs/${jobId}`);
        await expect(page.getByTestId("job-status")).toHaveAttribute("data-status", "completed", { timeout: 60_000 });
        await fits(page, `/jobs/${jobId}`, `${lang.code}-${w.name}-job`);
        await fits(page, "/jobs", `${lang.code}-${w.name}-jobs`);
        await fits(page, "/spend?group=team&period=day", `${lang.code}-${w.name}-spend`);
        await fits(page, "/no/such/page", `${lang.code}-${w.name}-404`);
      });

      test.describe(`as an admin (${w.name})`, () => {
        test.use({ storageState: storageFor("admin") });
        test(`the audit log fits a ${w.width}px window`, async ({ page }) => {
          await page.setViewportSize({ width: w.width, height: w.height });
          await fits(page, "/audit", `${lang.code}-${w.name}-audit`);
          await fits(page, "/budgets", `${lang.code}-${w.name}-budgets`);
        });
      });

      test.describe(`signed out (${w.name})`, () => {
        test.use({ storageState: { cookies: [], origins: [] } });
        test(`the sign-in page fits a ${w.width}px window`, async ({ page }) => {
          await page.setViewportSize({ width: w.width, height: w.height });
          await fits(page, "/login", `${lang.code}-${w.name}-login`);
        });
      });
    }
  });
}
