// Times the New batch page's in-browser check of one file in headless
// Chromium (used by benches/validator.rs). Prints "ms <n>" per run.
//   node check-in-browser.mjs <base-url> <user> <password> <file>
import { chromium } from "@playwright/test";

const [base, user, password, file] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
try {
  const page = await browser.newPage({ baseURL: base });
  await page.goto("/login");
  await page.getByTestId("username").fill(user);
  await page.getByTestId("password").fill(password);
  await page.getByTestId("sign-in").click();
  await page.waitForURL(`${base}/`);
  for (let run = 0; run < 3; run++) {
    await page.goto("/batches/new");
    await page.locator('body[data-hydrated="true"]').waitFor();
    await page.getByTestId("file").setInputFiles(file);
    const result = page.getByTestId("file-check");
    await result.waitFor({ timeout: 300_000 });
    if ((await result.getAttribute("data-ok")) !== "true") throw new Error(await result.innerText());
    console.log(`ms ${await result.getAttribute("data-ms")}`);
  }
} finally {
  await browser.close();
}
