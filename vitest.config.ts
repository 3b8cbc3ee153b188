import { cloudflareTest } from '@cloudflare/vitest-pool-workers'
import { defineConfig } from 'vitest/config'

export default defineConfig({
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
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // LangChain is large: pre-bundling it once saves most of a cold run.
    deps: {
      optimizer: { ssr: { enabled: true, include: ['@langchain/openai', '@langchain/core'] } },
    },
  },
})
