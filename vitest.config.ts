import { defineConfig } from "vitest/config";

// Two suites: `unit` runs anywhere as any user; `netboot` needs root, network
// namespaces and Debian packages, and is run by .ci/run.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts"],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "netboot",
          include: ["test/netboot/**/*.test.ts"],
          testTimeout: 180_000,
          hookTimeout: 120_000,
          // Namespaces and fixed ports: one file at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
