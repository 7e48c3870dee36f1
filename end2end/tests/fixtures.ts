import { test as base, expect, type Page } from "@playwright/test";

export { expect, request } from "@playwright/test";
export type { APIRequestContext, BrowserContext, Page } from "@playwright/test";

/**
 * The suite's `test`: every page a test opens is watched, and the test fails
 * on any browser console error or uncaught page error after it ends (and on
 * Leptos's warning of a resource read outside a Suspense). A test
 * that provokes an error on purpose (a refused request, a server stopped
 * under an open page) names it with `allowConsole(/pattern/)`.
 */
export const test = base.extend<{ allowConsole: (pattern: RegExp) => void }>({
  allowConsole: [
    async ({ context }, use, testInfo) => {
      const problems: string[] = [];
      const allowed: RegExp[] = [];
      const watch = (p: Page) => {
        p.on("console", (m) => {
          // The location names the resource a "Failed to load" is about.
          if (m.type() === "error") problems.push(`console: ${m.text()} at ${m.location().url} (page ${p.url()})`);
          // Leptos (debug builds) warns of a resource read outside a
          // Suspense: what the server sent and what hydration reads can then
          // differ. It names the place; it is a defect like an error.
          else if (m.type() === "warning" && m.text().includes("outside a <Suspense/>"))
            problems.push(`console warning: ${m.text().slice(0, 300)} (page ${p.url()})`);
        });
        p.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      };
      context.pages().forEach(watch);
      context.on("page", watch);
      await use((pattern) => allowed.push(pattern));
      const unexpected = problems.filter((p) => !allowed.some((a) => a.test(p)));
      if (process.env.E2E_CONSOLE_REPORT) {
        console.log(`CONSOLE-REPORT ${testInfo.title} :: ${JSON.stringify(unexpected).slice(0, 1500)}`);
      } else {
        expect(unexpected, "browser console errors and page errors").toEqual([]);
      }
    },
    { auto: true },
  ],
});
