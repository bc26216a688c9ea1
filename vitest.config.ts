import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Integration tests share one real Orthanc per file; files run one after another to keep a 2-core CI calm.
    fileParallelism: false,
    // Keeps every service log of the run and, after the last file, scans them for the input series' patient data.
    globalSetup: ["tests/setup/service-log-scan.ts"],
  },
});
