import { cloudflareTest } from '@cloudflare/vitest-pool-workers'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    projects: [
      {
        // The guard: inside workerd, the Workers runtime it ships to.
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
          name: 'workers',
          include: ['test/**/*.test.ts'],
          exclude: ['test/cli/**', 'test/node/**', 'test/clients/**'],
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
          include: ['test/cli/**/*.test.ts', 'test/node/**/*.test.ts'],
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
