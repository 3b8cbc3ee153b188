import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-plugin'
import { join } from 'node:path'
import { defineConfig } from 'vitest/config'
import { compatibilityDate, compatibilityFlags } from './test/support/compatibility.ts'

// The package's own names (samples import `rag-guard/langchain` as a user does) resolve to the
// sources, as in tsconfig.json's `paths`: the tests never need a build (dist/).
const resolve = {
  alias: [
    { find: /^rag-guard$/, replacement: join(import.meta.dirname, 'src/index.ts') },
    {
      find: /^rag-guard\/(langchain|worker)$/,
      replacement: join(import.meta.dirname, 'src/$1'),
    },
  ],
}

export default defineConfig({
  test: {
    projects: [
      {
        resolve,
        // The guard: inside workerd, the Workers runtime it ships to.
        plugins: [
          cloudflareTest(async ({ inject }) => ({
            // The plugin starts workerd with --verbose unless told otherwise: then workerd logs
            // its own view of every fetch a test makes fail on purpose (a refused port, an
            // upstream broken off), with raw stack addresses, even when the guard handles the
            // error. Errors a test does not expect still fail it, with their message.
            verbose: false,
            miniflare: {
              // What deploys: wrangler.toml's date and flags, but for the opt-out of Node.js
              // compatibility: Vitest's runner inside workerd needs node:* modules (the plugin
              // turned them on before 2026-08-04 too); the guard's own code uses none.
              compatibilityDate,
              compatibilityFlags: compatibilityFlags.filter(
                (flag) => !flag.startsWith('no_nodejs_compat'),
              ),
              bindings: {
                STUB_ORIGIN: inject('stubOrigin'),
                // The decision store's schema, applied by the review tests (test/review/).
                REVIEW_MIGRATIONS: await readD1Migrations('src/review/migrations'),
              },
              kvNamespaces: ['TEST_CACHE'],
              // TEST_DB gets the schema; EMPTY_DB never does (a store whose writes fail).
              d1Databases: ['TEST_DB', 'EMPTY_DB'],
              // Miniflare's own rate limiter: three a minute per key (the sign-in brake's tests).
              ratelimits: {
                TEST_RATE_LIMIT: {
                  namespace_id: '1001',
                  simple: { limit: 3, period: 60 as const },
                },
              },
              // An Analytics Engine dataset, as GUARD_METRICS is bound in production.
              analyticsEngineDatasets: { TEST_METRICS: { dataset: 'rag_guard_test' } },
            },
          })),
        ],
        test: {
          name: 'workers',
          include: ['test/**/*.test.ts'],
          // Chosen, not defaulted: each file gets fresh module state (the judge remembers which
          // models refused n or logprobs; stubs and ports are per file).
          isolate: true,
          exclude: [
            'test/cli/**',
            'test/node/**',
            'test/clients/**',
            'test/package/**',
            'test/**/*.node.test.ts',
          ],
          globalSetup: ['test/global-setup.ts'],
          // LangChain is large: pre-bundling it once saves most of a cold run.
          deps: {
            optimizer: {
              ssr: { enabled: true, include: ['@langchain/openai', '@langchain/core'] },
            },
          },
        },
      },
      {
        resolve,
        // The rag-guard command line, and the middleware under Node: in Node, where they run.
        test: {
          name: 'node',
          include: ['test/cli/**/*.test.ts', 'test/node/**/*.test.ts', 'test/**/*.node.test.ts'],
          isolate: true,
          environment: 'node',
          testTimeout: 30_000,
        },
      },
      {
        resolve,
        // Real client libraries (openai, ChatOpenAI, the AI SDK, LangServe's RemoteRunnable, curl)
        // in Node, where they run, against the deploy bundle in workerd and real upstreams.
        test: {
          name: 'clients',
          include: ['test/clients/**/*.test.ts'],
          isolate: true,
          environment: 'node',
          globalSetup: ['test/clients/global-setup.ts'],
          testTimeout: 30_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
})
