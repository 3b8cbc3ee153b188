import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-pool-workers'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    projects: [
      {
        // The guard: inside workerd, the Workers runtime it ships to.
        plugins: [
          cloudflareTest(async ({ inject }) => ({
            miniflare: {
              compatibilityDate: '2026-04-01',
              compatibilityFlags: ['enable_request_signal'],
              bindings: {
                STUB_ORIGIN: inject('stubOrigin'),
                // The decision store's schema, applied by the review tests (test/review/).
                REVIEW_MIGRATIONS: await readD1Migrations('src/review/migrations'),
              },
              kvNamespaces: ['TEST_CACHE'],
              // TEST_DB gets the schema; EMPTY_DB never does (a store whose writes fail).
              d1Databases: ['TEST_DB', 'EMPTY_DB'],
              // An Analytics Engine dataset, as GUARD_METRICS is bound in production.
              analyticsEngineDatasets: { TEST_METRICS: { dataset: 'rag_guard_test' } },
            },
          })),
        ],
        test: {
          name: 'workers',
          include: ['test/**/*.test.ts'],
          exclude: ['test/cli/**', 'test/node/**', 'test/clients/**', 'test/**/*.node.test.ts'],
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
        // The rag-guard command line, and the middleware under Node: in Node, where they run.
        test: {
          name: 'node',
          include: ['test/cli/**/*.test.ts', 'test/node/**/*.test.ts', 'test/**/*.node.test.ts'],
          environment: 'node',
          testTimeout: 30_000,
        },
      },
      {
        // Real client libraries (openai, ChatOpenAI, the AI SDK, LangServe's RemoteRunnable, curl)
        // in Node, where they run, against the deploy bundle in workerd and real upstreams.
        test: {
          name: 'clients',
          include: ['test/clients/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/clients/global-setup.ts'],
          testTimeout: 30_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
})
