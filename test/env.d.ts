declare namespace Cloudflare {
  interface Env {
    /** Origin of the OpenAI-protocol stub server that test/global-setup.ts starts. */
    STUB_ORIGIN: string
    /** A KV namespace for verdict-cache tests. */
    TEST_CACHE: KVNamespace
    /** A rate-limiting binding as Miniflare simulates it: 3 calls a minute per key. */
    TEST_RATE_LIMIT: RateLimit
  }
}
