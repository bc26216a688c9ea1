/**
 * Debian's Chromium driven by playwright-core, as a user opens Orthanc's pages: headless, its own throw-away profile,
 * Orthanc's login given to every request. `close()` ends the browser and removes the profile.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium, type BrowserContext } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

const QUIET = ["--headless", "--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync"];

export interface TestBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchChromium(login: { username: string; password: string },
  viewport: { width: number; height: number }, graphics: string[] = ["--disable-gpu"]): Promise<TestBrowser> {
  const profileDir = mkdtempSync(path.join(tmpdir(), "ct-enhance-chromium-"));
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM, headless: true, args: [...QUIET, ...graphics], httpCredentials: login, viewport,
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profileDir, { recursive: true, force: true });
    },
  };
}
