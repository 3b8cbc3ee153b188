/**
 * RAG Guard for LangChain (`rag-guard/langchain`): agent middleware for `createAgent` and a
 * guarded runnable for LCEL chains, with the judge, scoring, thresholds and verdicts of the
 * Worker. Kept apart from the package's main entry, so a Worker that does not use it never
 * bundles LangChain's agent code.
 */
export { ragGuardMiddleware, type RagGuardAgentState } from './agent'
export { ragGuardRunnable, RagGuardRunnable, type Guarded } from './runnable'
export {
  type CallerInfo,
  type ChainContextLocation,
  type ExitBehavior,
  type RagGuardLangChainOptions,
  type RagGuardMiddlewareOptions,
  type RagGuardRunnableOptions,
} from './options'
export {
  RAG_GUARD_KEY,
  RagGuardBlockedError,
  type GuardCheck,
  type RagGuardVerdict,
  type RagGuardSentence,
} from './verdict'
export { JUDGE_RUN_NAME } from '../judge/judge'
