// Build-time stand-in for `zod` and `zod/v4` (wrangler `alias`): zod 4's classic API as
// zod/v4/classic/external.js exports it, less `locales` and `core.locales` (every locale's
// messages, ~260 KiB minified) and less the schema compiler (`compile`, `withParser`, ~30 KiB) and
// `fromJSONSchema`; zod-core.mjs stands in for `zod/v4/core`. English stays: zod registers it
// itself (classic/schemas.js). Nothing in the Worker uses what is left out. Pinned to zod 4.6.7's
// files: test/node/bundle-stand-ins.test.ts fails when an upgrade changes what zod exports.
import * as z from './zod-external.mjs'
export * from './zod-external.mjs'
export { z, z as default }
