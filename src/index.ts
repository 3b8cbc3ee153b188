/**
 * RAG Guard: public exports. Everything not listed here is internal.
 */
export {
  ragGuard,
  DEFAULT_FALLBACK_MESSAGE,
  HEADER_MODE,
  HEADER_REASON,
  HEADER_SCORE,
  HEADER_VERDICT,
  type GuardDecision,
  type GuardMode,
  type GuardReason,
  type RagGuardOptions,
  type RagGuardVariables,
} from './guard/middleware'
export {
  decide,
  validateThresholds,
  DEFAULT_THRESHOLDS,
  type Thresholds,
  type Verdict,
} from './guard/policy'
export {
  createJudge,
  DEFAULT_JUDGE_OPTIONS,
  type Judge,
  type JudgeCallOptions,
  type JudgeChatModel,
  type JudgeFailureReason,
  type JudgeInput,
  type JudgeNoScore,
  type JudgeOptions,
  type JudgeResult,
  type JudgeScore,
  type TokenUsage,
} from './judge/judge'
export {
  buildJudgePrompt,
  PROMPT_VERSION,
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
