/**
 * RAG Guard: public exports. Everything not listed here is internal.
 */
export { ragGuard, type RagGuardVariables } from './guard/middleware'
export {
  DEFAULT_FALLBACK_MESSAGE,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_STREAM_BUFFER_BYTES,
  type CacheScope,
  type DetailsAudience,
  type InputOverflow,
  type OnUngrounded,
  type RagGuardOptions,
  type StreamMode,
} from './guard/options'
export {
  REASON_POLICY,
  type GuardDecision,
  type GuardMode,
  type GuardReason,
  type ReasonPolicy,
  type SentenceDecision,
} from './guard/decision'
export {
  HEADER_CACHE,
  HEADER_CHECK,
  HEADER_ESTIMATOR,
  HEADER_MODE,
  HEADER_SCORES,
  HEADER_REASON,
  HEADER_SCORE,
  HEADER_VERDICT,
} from './guard/respond'
export {
  logDecision,
  type CheckRecord,
  type DecisionContent,
  type DecisionRecord,
} from './guard/decision-log'
export {
  cacheApiStore,
  cacheKey,
  kvStore,
  type CacheApiStoreOptions,
  type CacheLike,
  type KVNamespaceLike,
  type KvStoreOptions,
  type VerdictCache,
} from './judge/cache'
export {
  createDecisionStore,
  type D1BoundStatementLike,
  type D1DatabaseLike,
  type DecisionStore,
  type DecisionStoreOptions,
} from './review/store'
export {
  createFormat,
  type ContextLocation,
  type FormatName,
  type RouteFormat,
  type StreamFormat,
} from './formats'
export {
  SSEParser,
  formatSSE,
  ANNOTATION_PREFIX,
  readAnnotation,
  type SSEEvent,
} from './formats/sse'
export {
  decide,
  validateThresholds,
  DEFAULT_THRESHOLDS,
  type Thresholds,
  type Verdict,
} from './guard/policy'
export { DEFAULT_JUDGE_OPTIONS, type EstimatorOption, type ReasoningEffort } from './judge/options'
export {
  createJudge,
  type Estimator,
  type Judge,
  type JudgeCallOptions,
  type JudgeChatModel,
  type JudgeFailureReason,
  type JudgeInput,
  type JudgeNoScore,
  type JudgeOptions,
  type JudgeResult,
  type JudgeScore,
  type LogprobsEstimate,
  type SamplingEstimate,
  type SentenceResult,
  type Granularity,
  type TokenUsage,
} from './judge/judge'
export { splitSentences, type Sentence } from './judge/sentences'
export { readAnswer, smoothedShare } from './judge/estimators/sampling'
export {
  buildJudgePrompt,
  buildPrompt,
  CHECKS,
  PROMPT_VERSION,
  PROMPT_VERSIONS,
  SENTENCE_PROMPT_VERSION,
  type Check,
  type ConversationTurn,
  type PromptInput,
  type JudgeMessage,
  type JudgePrompt,
} from './judge/prompt'
export {
  classifyToken,
  scoreLogprobs,
  type ChatLogprobs,
  type LogprobScore,
  type ScoringFailureReason,
  type TokenLogprob,
  type TopLogprob,
} from './judge/scoring'
export {
  parseJsonPointer,
  readJsonPointer,
  replaceAtJsonPointer,
  type JsonPointer,
} from './formats/json-pointer'
export { readContext, readQuestion } from './formats/context'
export { ConfigurationError } from './errors'
