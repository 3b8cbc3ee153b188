// Build-time stand-in for `zod` and `zod/v4` (wrangler `alias`): zod 4's classic API as
// zod/v4/classic/external.js exports it, less `locales` and `core.locales` (every locale's
// messages, ~260 KiB minified); zod-core.mjs stands in for `zod/v4/core`. English stays: zod
// registers it itself (classic/schemas.js). `z.locales` and `z.core.locales` are then missing;
// nothing in the Worker uses them. Pinned to zod 4.6.7's files.
import * as z from './zod-external.mjs'
export * from './zod-external.mjs'
export { z, z as default }
