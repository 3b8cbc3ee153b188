import { defineConfig } from 'vitest/config'

// `npm run test:package`: the packed package installed into fresh projects with the latest
// hono, wrangler and LangChain from the npm registry (network to the registry needed), used the
// way its users use it. CI runs it after `npm test` (.ci/run).
export default defineConfig({
  test: {
    name: 'package',
    include: ['test/package/**/*.test.ts'],
    environment: 'node',
    globalSetup: ['test/package/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 900_000,
    // The two projects' installs and wrangler builds wait mostly on I/O: side by side, even on
    // two cores.
    maxWorkers: 2,
  },
})
