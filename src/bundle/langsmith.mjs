// Build-time stand-in for `langsmith` (wrangler.toml `[alias]`), for the Worker, which never
// traces to LangSmith: @langchain/core imports the tracing `Client` (about 100 KiB minified with
// what it pulls in) and `RunTree` when it loads, and uses the client only when tracing is on
// (LANGSMITH_TRACING), which the Worker cannot turn on (it has no `process.env`). Should that
// change, the client says so instead of tracing nowhere. See docs/performance.md.
export { RunTree } from './langsmith-run-trees.mjs'

export class Client {
  constructor() {
    throw new Error(
      'RAG Guard Worker: LangSmith tracing is not in this bundle (wrangler.toml aliases langsmith out); remove the alias to trace',
    )
  }
}
