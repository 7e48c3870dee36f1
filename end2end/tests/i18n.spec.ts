import { expect, test, type Page } from "./fixtures";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ACCOUNTS, PASSWORD, storageFor } from "./accounts";

// The main journey in each language: sign in, check a file with problems,
// create a batch, watch it finish, read its results and download them. On
// every page: the document's language, no console errors (the fixture), and
// no text of the other language or a raw key.

const fixture = (name: string) => join(__dirname, "..", "fixtures", name);

/** `section.key` → text, from a file in locales/. Our files are plain
 * (comments, `[section]` and `key = "string"` lines); any other line fails
 * the test rather than being skipped. */
function texts(code: string): Map<string, string> {
  const out = new Map<string, string>();
  let section = "";
  const file = join(__dirname, "..", "..", "locales", `${code}.toml`);
  for (const [i, line] of readFileSync(file, "utf8").split("\n").entries()) {
    const s = line.match(/^\[([a-z_]+)\]\s*$/);
    const kv = line.match(/^([a-z0-9_]+)\s*=\s*(".*")\s*$/);
    if (s) section = s[1];
    else if (kv) out.set(`${section}.${kv[1]}`, JSON.parse(kv[2]));
    else if (line.trim() !== "" && !line.trim().startsWith("#")) throw new Error(`${file}:${i + 1}: cannot read ${line}`);
  }
  return out;
}

const en = texts("en");
const ko = texts("ko");

/** English texts whose Korean differs, cut at their arguments: phrases of
 * two words or more anywhere on a page, and single words (Status, Apply)
 * as the whole text of a heading, label, button or link. */
const english = [...en.entries()]
  .filter(([k, v]) => ko.get(k) !== v)
  .flatMap(([, v]) => v.split(/\{[a-z_]+\}/))
  .map((p) => p.trim())
  .filter((p) => /[a-z]{2}/i.test(p));
const englishPhrases = english.filter((p) => p.split(/\s+/).length >= 2);
const englishWords = new Set(english.filter((p) => !/\s/.test(p) && /^[A-Za-z][a-z]+$/.test(p)));

async function hydrated(page: Page) {
  await page.locator('body[data-hydrated="true"]').waitFor();
}

/** What a reader sees, without the language switch (which names every
 * language in its own words). */
async function shown(page: Page): Promise<string> {
  return page.evaluate(() => {
    const body = document.body.cloneNode(true) as HTMLElement;
    body.querySelectorAll("[data-testid=lang-switch], script").forEach((e) => e.remove());
    const titles = [...document.querySelectorAll("[title], [placeholder], [aria-label]")]
      .filter((e) => !e.closest("[data-testid=lang-switch]"))
      .map((e) => ["title", "placeholder", "aria-label"].map((a) => e.getAttribute(a) ?? "").join(" "));
    return `${document.title}\n${body.innerText}\n${titles.join("\n")}`;
  });
}

/** The whole texts of headings, labels, buttons, links and table heads. */
async function chrome(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll("h1, h2, h3, label, button, a, th, summary, legend, option")]
      .filter((e) => !e.closest("[data-testid=lang-switch]"))
      .flatMap((e) => [...e.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.textContent!.trim()))
      .filter((s) => s !== ""),
  );
}

async function inLanguage(page: Page, code: "en" | "ko") {
  await expect(page.locator("html")).toHaveAttribute("lang", code);
  const text = await shown(page);
  if (code === "ko") {
    const left = englishPhrases.filter((p) => text.includes(p));
    expect(left, `English left on ${page.url()}`).toEqual([]);
    const words = (await chrome(page)).filter((w) => englishWords.has(w));
    expect(words, `English labels on ${page.url()}`).toEqual([]);
    expect(text).toMatch(/[가-힣]/);
  } else {
    expect(text.match(/[가-힣]+/g), `Korean on ${page.url()}`).toBeNull();
  }
}

const journeys = [
  // Korean from the browser's Accept-Language alone.
  { code: "ko" as const, browser: "ko-KR", how: "from Accept-Language" },
  // English chosen with the switch in a Korean browser, and remembered.
  { code: "en" as const, browser: "ko-KR", how: "chosen with the switch" },
];

for (const j of journeys) {
  test.describe(`in ${j.code} (${j.how})`, () => {
    test.use({ locale: j.browser, storageState: { cookies: [], origins: [] } });

    test("sign in, check a bad file, create, watch, results, download", async ({ page, allowConsole }) => {
      test.setTimeout(120_000);
      // The forced submit of the bad file is refused on purpose.
      allowConsole(/status of 422/);
      const t = (key: string) => (j.code === "ko" ? ko : en).get(key)!;

      await page.goto("/login");
      if (j.code === "en") {
        await expect(page.locator("html")).toHaveAttribute("lang", "ko");
        await page.getByTestId("lang-en").click();
        // Back on the very page (the form's `next`, rendered by the server).
        await expect(page).toHaveURL(/\/login$/);
      }
      await expect(page.getByRole("heading", { level: 1 })).toHaveText(t("login.title"));
      await inLanguage(page, j.code);
      await page.getByTestId("username").fill(ACCOUNTS.operator);
      await page.getByTestId("password").fill(PASSWORD);
      await page.getByTestId("sign-in").click();
      await expect(page).toHaveURL(/\/$/);
      await hydrated(page);
      await expect(page.getByRole("navigation", { name: t("nav.main") })).toContainText(t("nav.batches"));
      await inLanguage(page, j.code);

      // A file with problems: named by line, in the reader's language.
      await page.getByRole("navigation", { name: t("nav.main") }).getByRole("link", { name: t("nav.new_batch") }).click();
      await expect(page).toHaveURL(/\/batches\/new$/);
      await hydrated(page);
      await page.getByTestId("file").setInputFiles(fixture("malformed.jsonl"));
      const check = page.getByTestId("check-errors");
      await expect(check).toContainText("duplicate_custom_id");
      await expect(page.getByTestId("file-check")).toHaveAttribute("data-ok", "false");
      await inLanguage(page, j.code);
      // The server's refusal too, when the browser's check is forced past.
      await page.getByTestId("create").evaluate((b) => b.removeAttribute("disabled"));
      await page.getByTestId("create").click();
      await expect(page.getByTestId("upload-error")).toContainText("duplicate_custom_id");
      await inLanguage(page, j.code);

      // A good file: create, and watch it finish live.
      await page.getByTestId("file").setInputFiles(fixture("chat-6.jsonl"));
      await expect(page.getByTestId("file-check")).toHaveAttribute("data-ok", "true");
      await inLanguage(page, j.code);
      await page.getByTestId("create").click();
      await expect(page).toHaveURL(/\/batches\/batch_[0-9a-f]+$/);
      const status = page.getByTestId("status");
      await expect(status).toHaveAttribute("data-status", "completed", { timeout: 30_000 });
      await expect(status).toHaveText(t("status.completed"));
      await hydrated(page);
      // Results, read from the output file, in the page.
      await expect(page.getByTestId("result-row")).toHaveCount(6);
      await expect(page.getByTestId("results-summary")).toBeVisible();
      await inLanguage(page, j.code);

      // The download.
      const link = page.getByTestId("download-output");
      const resp = await page.request.get((await link.getAttribute("href"))!);
      expect(resp.status()).toBe(200);
      expect((await resp.text()).trim().split("\n")).toHaveLength(6);

      // The table, reloaded: the choice holds on a fresh load.
      await page.goto("/");
      await hydrated(page);
      await expect(page.getByTestId("batch-row").first().getByTestId("status")).toHaveAttribute("data-status", /.+/);
      await inLanguage(page, j.code);
    });
  });
}

test.describe("the admin's pages in ko", () => {
  test.use({ locale: "ko-KR", storageState: storageFor("admin") });
  test("the audit log and the sessions list", async ({ page }) => {
    for (const path of ["/audit", "/audit?action=sign_in", "/sessions"]) {
      await page.goto(path);
      await hydrated(page);
      await inLanguage(page, "ko");
    }
  });
});
