/**
 * The test suite with the bundle trims of test/bench/trim applied, as wrangler's `alias` would
 * apply them to the deploy bundle: `zod` and `zod/v4` without locales, `langsmith` and
 * `langsmith/run_trees` replaced by stand-ins. Everything else as in vitest.config.ts.
 *
 *   npx vitest run --config test/bench/trim/vitest.trimmed.config.ts
 */
import { fileURLToPath } from 'node:url'
import { cloudflareTest } from '@cloudflare/vitest-pool-workers'
import { defineConfig } from 'vitest/config'

const trim = (file: string) => fileURLToPath(new URL(file, import.meta.url))
const ROOT = fileURLToPath(new URL('../../..', import.meta.url))

export const TRIM_ALIASES = [
  // Exact names only: the other subpaths (zod/v3, langsmith/singletons/traceable) stay as they are.
  { find: /^zod$/, replacement: trim('./zod.mjs') },
  { find: /^zod\/v4$/, replacement: trim('./zod.mjs') },
  { find: /^zod\/v4\/core$/, replacement: trim('./zod-core.mjs') },
  { find: /^langsmith$/, replacement: trim('./langsmith.mjs') },
  { find: /^langsmith\/run_trees$/, replacement: trim('./langsmith-run-trees.mjs') },
]

export default defineConfig({
  root: ROOT,
  test: {
    projects: [
      {
        root: ROOT,
        resolve: { alias: TRIM_ALIASES },
        plugins: [
          cloudflareTest(({ inject }) => ({
            miniflare: {
              compatibilityDate: '2026-04-01',
              compatibilityFlags: ['enable_request_signal'],
              bindings: { STUB_ORIGIN: inject('stubOrigin') },
              kvNamespaces: ['TEST_CACHE'],
            },
          })),
        ],
        test: {
          name: 'workers (trimmed)',
          include: ['test/**/*.test.ts'],
          exclude: ['test/cli/**'],
          globalSetup: ['test/global-setup.ts'],
          // No dependency pre-bundling: the aliases must reach LangChain's own imports.
          deps: { optimizer: { ssr: { enabled: false } } },
        },
      },
    ],
  },
})
