// Build-time stand-in for `langsmith` (wrangler `alias`), for a Worker that never traces to
// LangSmith: @langchain/core imports `Client` (the tracing client, ~100 KiB minified with
// what it pulls) and `RunTree` at load time, and only uses them when tracing is on
// (LANGSMITH_TRACING / LANGCHAIN_TRACING_V2). With this stand-in, turning tracing on fails
// loudly instead.
export { RunTree } from './langsmith-run-trees.mjs'

export class Client {
  constructor() {
    throw new Error('LangSmith tracing is not bundled in this Worker (langsmith is aliased out)')
  }
}
