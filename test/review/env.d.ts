declare namespace Cloudflare {
  interface Env {
    /** A D1 database for the decision store tests: the review tests apply the schema to it. */
    TEST_DB: D1Database
    /** A D1 database that never gets the schema: every write to it fails. */
    EMPTY_DB: D1Database
    /** src/review/migrations/ as `readD1Migrations` read it (vitest.config.ts). */
    REVIEW_MIGRATIONS: import('cloudflare:test').D1Migration[]
    /** An Analytics Engine dataset (Miniflare's local one, which keeps no data points). */
    TEST_METRICS: AnalyticsEngineDataset
  }
}
