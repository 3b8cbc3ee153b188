import { listDigest, sha256Hex } from '../hash'
import type { GuardDecision, GuardMode } from './decision'
import type { Verdict } from './policy'

/**
 * One structured line per guarded request: what was decided, from what, at what cost. Written
 * for Workers Logs (`console.log` of one JSON object) and read back by `rag-guard calibrate`.
 *
 * It never holds a secret, and holds the question and the documents themselves only when
 * `logContent` is on; otherwise their SHA-256 lets a log line be joined with labels.
 */
export interface DecisionRecord {
  message: 'rag-guard decision'
  time: string
  /** `cf-ray`, else the client's `x-request-id`, else a random id. */
  requestId: string
  /** The route pattern that guarded the request, and the request's own path. */
  route: string
  path: string
  method: string
  format: string
  mode: GuardMode
  /** How a streamed answer was handled: held until the verdict, annotated, or passed on. */
  stream?: 'hold' | 'annotate' | 'shadow' | 'unsupported'
  verdict: Verdict
  /** Whether the verdict changed the response (a block applied in enforce mode, or a 413). */
  applied: boolean
  score?: number
  pTrue?: number
  pFalse?: number
  /** How the judge estimated the score (or tried to): `logprobs` or `sampling`. */
  estimator?: 'logprobs' | 'sampling'
  /** Sampling: answers read, and how many said True and False. */
  samples?: number
  trueCount?: number
  falseCount?: number
  reason?: string
  cache?: 'hit' | 'miss'
  /** The judge saw only part of the documents (they passed its input limits). */
  truncated?: boolean
  /** A batch: each input's verdict, score and reason, in order. */
  items?: Array<{ verdict: Verdict; score?: number; reason?: string }>
  /** The record of one item of a batch (handed to the sinks beside the batch's): which one. */
  batchItem?: { index: number; size: number }
  /** Who called: the caller's id (never a secret), when the host knows it. */
  caller?: string
  /** The check the decision is of; with several checks, the one that decided. */
  check?: string
  /** Each check's own outcome, on a route with more than one. */
  checks?: Record<string, CheckRecord>
  /** The judge call's own time, retries included (0 for a cache hit). */
  judgeLatencyMs?: number
  /**
   * Time the guard added after the upstream's response arrived, until the response went out
   * (for an annotated or shadow stream, which goes out at once, about 0).
   */
  addedLatencyMs: number
  /** Status of the response the client got. */
  status: number
  model?: string
  promptVersion: string
  questionChars?: number
  contextDocuments?: number
  contextChars?: number
  questionHash?: string
  contextHash?: string
  question?: string
  context?: string[]
  /** Groundedness asked per sentence: `sentence`, or `answer` when it had more than the limit. */
  granularity?: 'answer' | 'sentence'
  /** Each sentence's score (or reason), numbered from 1; `score` above is the lowest. */
  sentences?: SentenceRecord[]
  /** Past `maxSentences`: the answer's sentence count (it was judged whole). */
  sentenceCount?: number
  /** Repair mode: the numbers of the sentences removed, and how many the answer had. */
  repaired?: { removed: number[]; sentences: number }
}

/** One sentence's outcome in a record: its verdict by the thresholds, its score or why it has none. */
export interface SentenceRecord {
  sentence: number
  verdict: Verdict
  score?: number
  reason?: string
}

/**
 * What a decision was about, as text: handed to a decision sink beside the record (which holds
 * it only with `logContent`), so that a sink with its own content policy, such as the decision
 * store, can keep it. The answer is there when the guard read it (a groundedness check, or a
 * context that came with the answer).
 */
export interface DecisionContent {
  question?: string
  documents?: readonly string[]
  answer?: string
  /**
   * A batch: each judged item's own record and text, so that a sink can keep each item like a
   * single request (the batch's record holds only the items' verdicts and scores).
   */
  items?: ReadonlyArray<{ record: DecisionRecord; content: DecisionContent }>
}

/** One check's outcome in a record. */
export interface CheckRecord {
  verdict: Verdict
  score?: number
  pTrue?: number
  pFalse?: number
  reason?: string
  cache?: 'hit' | 'miss'
  judgeLatencyMs?: number
  promptVersion?: string
  granularity?: DecisionRecord['granularity']
  sentences?: SentenceRecord[]
  sentenceCount?: number
  repaired?: DecisionRecord['repaired']
}

/** What a decision says of its sentences: granularity, each one's score, the repair. */
export function sentenceFields(
  decision: GuardDecision,
): Pick<DecisionRecord, 'granularity' | 'sentences' | 'sentenceCount' | 'repaired'> {
  const judge = decision.judge
  return {
    ...(judge?.granularity ? { granularity: judge.granularity } : {}),
    ...(decision.sentences ? { sentences: decision.sentences.map((part) => ({ ...part })) } : {}),
    ...(judge?.sentenceCount !== undefined ? { sentenceCount: judge.sentenceCount } : {}),
    ...(decision.repaired ? { repaired: decision.repaired } : {}),
  }
}

function checkRecord(decision: GuardDecision): CheckRecord {
  const judge = decision.judge
  return {
    verdict: decision.verdict,
    ...(decision.score !== undefined ? { score: decision.score } : {}),
    ...(judge?.ok ? { pTrue: judge.pTrue, pFalse: judge.pFalse } : {}),
    ...(decision.reason ? { reason: decision.reason } : {}),
    ...(decision.cache ? { cache: decision.cache } : {}),
    ...(judge ? { judgeLatencyMs: judge.latencyMs, promptVersion: judge.promptVersion } : {}),
    ...sentenceFields(decision),
  }
}

/** The question and the documents: sizes and hashes, and the text itself when asked for. */
export async function describeInput(
  question: string | undefined,
  documents: readonly string[] | undefined,
  logContent: boolean,
): Promise<Partial<DecisionRecord>> {
  const described: Partial<DecisionRecord> = {}
  if (question !== undefined) {
    described.questionChars = question.length
    described.questionHash = await sha256Hex(question)
    if (logContent) described.question = question
  }
  if (documents !== undefined) {
    described.contextDocuments = documents.length
    described.contextChars = documents.reduce((total, document) => total + document.length, 0)
    described.contextHash = await listDigest(documents)
    if (logContent) described.context = [...documents]
  }
  return described
}

/** The default sink: one JSON line on stdout, which Workers Logs indexes. */
export function logDecision(record: DecisionRecord): void {
  console.log(JSON.stringify(record))
}

/** Where a decision was made: the request and route, as the host (Hono, the Worker) knows them. */
export interface DecisionContext {
  requestId: string
  route: string
  path: string
  method: string
  format: string
  promptVersion: string
  stream?: DecisionRecord['stream']
  applied: boolean
  status: number
  /** When the response went out, and when the upstream's answer had arrived (if it had). */
  sentAt: number
  answeredAt?: number
  question?: string
  documents?: readonly string[]
  logContent: boolean
  caller?: string
}

/** The record of one decision: what was decided, from what, at what cost. */
export async function decisionRecord(
  decision: GuardDecision,
  where: DecisionContext,
): Promise<DecisionRecord> {
  const judge = decision.judge
  return {
    message: 'rag-guard decision',
    time: new Date(where.sentAt).toISOString(),
    requestId: where.requestId,
    route: where.route,
    path: where.path,
    method: where.method,
    format: where.format,
    mode: decision.mode,
    ...(where.stream ? { stream: where.stream } : {}),
    verdict: decision.verdict,
    applied: where.applied,
    ...(decision.score !== undefined ? { score: decision.score } : {}),
    ...(judge?.ok ? { pTrue: judge.pTrue, pFalse: judge.pFalse } : {}),
    ...(judge?.estimator ? { estimator: judge.estimator } : {}),
    ...(judge && 'samples' in judge && judge.samples !== undefined
      ? { samples: judge.samples, trueCount: judge.trueCount, falseCount: judge.falseCount }
      : {}),
    ...(decision.reason ? { reason: decision.reason } : {}),
    ...(decision.cache ? { cache: decision.cache } : {}),
    ...(decision.truncated ? { truncated: true } : {}),
    ...(decision.items
      ? {
          items: decision.items.map((item) => ({
            verdict: item.verdict,
            ...(item.score !== undefined ? { score: item.score } : {}),
            ...(item.reason ? { reason: item.reason } : {}),
          })),
        }
      : {}),
    ...(where.caller ? { caller: where.caller } : {}),
    ...(decision.check ? { check: decision.check } : {}),
    ...(decision.checks
      ? {
          checks: Object.fromEntries(
            Object.entries(decision.checks).map(([check, part]) => [check, checkRecord(part)]),
          ),
        }
      : {}),
    ...(judge ? { judgeLatencyMs: judge.latencyMs, model: judge.model } : {}),
    addedLatencyMs: Math.max(0, where.sentAt - (where.answeredAt ?? where.sentAt)),
    status: where.status,
    promptVersion: decision.judge?.promptVersion ?? where.promptVersion,
    ...sentenceFields(decision),
    ...(await describeInput(where.question, where.documents, where.logContent)),
  }
}
