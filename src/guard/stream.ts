/**
 * Acting on a streamed answer (server-sent events), in one of three ways:
 * - hold: keep the stream in a bounded buffer until the verdict, then send it on or replace it
 *   with a well-formed fallback stream;
 * - annotate: send every chunk at once and add the verdict, as an SSE comment, after the
 *   stream's own end;
 * - shadow: send every chunk at once; the verdict goes to the decision record only.
 * The upstream's bytes are forwarded as they are. The parser only watches them for the context,
 * and only until judging has started: after that, chunks go through without being parsed.
 */
import { ANNOTATION_PREFIX, SSEParser, type SSEEvent } from '../formats/sse'
import type { StreamFormat } from '../formats'
import type { GuardDecision } from './decision'
import type { Exchange } from './exchange'
import { readLimits } from './extract'
import { hold, relay, type HoldOutcome } from './relay'
import { repairedText, repairOf, unrepaired } from './repair'
import { replacedBodyHeaders, type Outcome } from './respond'

const encoder = new TextEncoder()
const LF = 0x0a
const CR = 0x0d

export function isEventStream(response: Response): boolean {
  return (response.headers.get('content-type') ?? '').toLowerCase().startsWith('text/event-stream')
}

/**
 * The comment an annotated stream ends with: the verdict, and the details (score to the same 4
 * decimals as the header, reason, mode, the estimator when it sampled) for those who see them. `midLine`: the upstream's bytes
 * did not end at a line end, so one is added first (glued to a last line, the comment would
 * change it).
 */
function annotation(decision: GuardDecision, details: boolean, midLine: boolean): Uint8Array {
  const data = JSON.stringify({
    verdict: decision.verdict,
    ...(details
      ? {
          score: decision.score === undefined ? null : Number(decision.score.toFixed(4)),
          reason: decision.reason ?? null,
          mode: decision.mode,
          // As x-rag-guard-estimator: said for sampling, absent for logprobs (the default).
          ...(decision.judge?.estimator === 'sampling' ? { estimator: 'sampling' } : {}),
        }
      : {}),
  })
  return encoder.encode(`${midLine ? '\n' : ''}${ANNOTATION_PREFIX}${data}\n\n`)
}

/**
 * What the guard watches in a stream while it relays or holds it: the context (until judging has
 * started), the answer (when a check needs it), the events a block is shaped from (hold mode),
 * and where the bytes stand. Its callbacks are the relay's and the hold's.
 */
interface StreamWatch {
  /** Hold mode's events so far, to shape a block after them. */
  readonly seen: SSEEvent[]
  /** Whether a check needs the answer: then every event is read to the end. */
  readonly needsAnswer: boolean
  /** The upstream's last byte was not a line end. */
  midLine(): boolean
  /** Bytes received when judging started (undefined: not yet). */
  receivedAtStart(): number | undefined
  onChunk(chunk: Uint8Array): void
  /** The decision once the upstream has ended: without a context seen, there is none to judge. */
  atEnd(): Promise<GuardDecision>
  onCancel(): void
  /** The context's event passed the body limit: unjudged. */
  tooLarge(): GuardDecision
}

function watchStream(exchange: Exchange, format: StreamFormat, holding: boolean): StreamWatch {
  const { settings, pending } = exchange
  const parser = new SSEParser()
  const limits = readLimits(settings)
  const seen: SSEEvent[] = []
  /** Bytes received; and how many had come when judging started (the context's share). */
  let received = 0
  let receivedAtStart: number | undefined = exchange.started ? 0 : undefined
  let midLine = false
  /** The answer's text so far, when a check needs it (bounded: the judge takes no more). */
  const needsAnswer = exchange.needsAnswer && format.answerPiece !== undefined
  let answer = ''

  const tooLarge = () =>
    exchange.settleUnjudged({
      ok: false,
      reason: 'response-too-large',
      message: `the stream's context event is larger than ${settings.maxBodyBytes} bytes`,
    })

  /** Watches the stream for the context (and the answer), and starts the judge when it can. */
  const observe = (events: SSEEvent[]) => {
    for (const event of events) {
      if (holding) seen.push(event)
      if (needsAnswer && answer.length <= settings.maxInputChars) {
        answer += format.answerPiece!(event) ?? ''
      }
      if (exchange.started) continue
      const context = format.contextFromEvent(event, limits)
      if (context) exchange.judgeContext(context)
    }
  }
  return {
    seen,
    needsAnswer,
    midLine: () => midLine,
    receivedAtStart: () => receivedAtStart,
    tooLarge,
    onChunk(chunk) {
      received += chunk.byteLength
      if (chunk.byteLength > 0) {
        const last = chunk[chunk.byteLength - 1]
        midLine = last !== LF && last !== CR
      }
      // Once judging has started, only hold mode (to shape a block) and an answer check need the events.
      if (exchange.started && !holding && !needsAnswer) return
      observe(parser.push(chunk))
      // An event that never ends is not read past the body limit, whatever it holds.
      if (!exchange.started && parser.pendingLength > settings.maxBodyBytes) tooLarge()
      if (exchange.started) receivedAtStart ??= received
    },
    atEnd() {
      if (!exchange.started || needsAnswer) observe(parser.end())
      if (!exchange.started) {
        exchange.settleUnjudged({
          ok: false,
          reason: 'no-documents',
          message: 'the stream ended without documents',
        })
      }
      // The answer is complete: the groundedness check can start.
      exchange.judgeAnswer(needsAnswer ? answer : undefined)
      return pending.promise
    },
    onCancel() {
      exchange.cancel()
      if (!exchange.started) {
        exchange.settleUnjudged({
          ok: false,
          reason: 'judge-aborted',
          message: 'the client went away before the stream showed its context',
        })
      }
    },
  }
}

/** Acts on a streamed answer: held until the verdict (enforce, hold), else relayed at once. */
export async function guardStream(
  exchange: Exchange,
  upstream: Response,
  format: StreamFormat,
): Promise<Outcome> {
  const { settings } = exchange
  const reader = upstream.body!.getReader()
  const holding = settings.mode === 'enforce' && settings.streamMode === 'hold'
  const watch = watchStream(exchange, format, holding)
  return holding
    ? holdStream(exchange, upstream, format, reader, watch)
    : relayStream(exchange, upstream, reader, watch)
}

/**
 * Annotate and shadow mode: every chunk goes out as it comes; an annotated stream ends with the
 * verdict as a comment, a shadow stream with nothing.
 */
function relayStream(
  exchange: Exchange,
  upstream: Response,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  watch: StreamWatch,
): Outcome {
  const shadow = exchange.settings.mode === 'shadow'
  const body = relay(upstream.body!, {
    reader,
    // Once judging has started, nothing more is watched (unless a check needs the answer): the
    // rest of the stream is piped natively.
    watching: () => !exchange.started || watch.needsAnswer,
    onChunk: watch.onChunk,
    onEnd: async (unseen) => {
      if (shadow) {
        // Nothing is added to a shadow stream: its end is not held up for the verdict.
        void watch.atEnd()
        return undefined
      }
      // Unseen, the stream's last byte is unknown: a line end first keeps the comment its own line.
      return annotation(await watch.atEnd(), exchange.details, unseen || watch.midLine())
    },
    onCancel: watch.onCancel,
  })
  return {
    response: new Response(body, upstream),
    decision: exchange.pending.promise,
    applied: false,
    stream: shadow ? 'shadow' : 'annotate',
  }
}

/**
 * Hold mode: the stream is kept (bounded) until the verdict, then sent on — the held chunks and
 * the rest piped natively — or replaced with a fallback stream of the format's own shape.
 */
async function holdStream(
  exchange: Exchange,
  upstream: Response,
  format: StreamFormat,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  watch: StreamWatch,
): Promise<Outcome> {
  const { settings, pending } = exchange
  // What hold mode may keep: while it looks for the context, up to the body limit (the context
  // must be read whole to be judged); once judging has started, the buffer limit more.
  const limit = () => {
    const atStart = watch.receivedAtStart()
    return atStart === undefined
      ? Math.max(settings.maxBodyBytes, settings.streamBufferBytes)
      : atStart + settings.streamBufferBytes
  }
  const held = await hold(
    reader,
    limit,
    () => (exchange.started ? pending.promise : undefined),
    watch.onChunk,
  )
  const heldVerdict = await heldDecision(exchange, held.outcome, watch)
  // Repair mode: the held answer is replaced by itself less its unsupported sentences (without
  // the answer at hand, the block it stands in for).
  const repair = repairOf(heldVerdict)
  const repaired =
    repair && exchange.answer !== undefined
      ? repairedText(exchange.answer, repair.removed)
      : undefined
  const decision = repair && repaired === undefined ? unrepaired(heldVerdict) : heldVerdict

  if (decision.verdict === 'block' || repaired !== undefined) {
    held.pending?.catch(() => {})
    void reader.cancel().catch(() => {})
    const fallback = format.blockStream(
      watch.seen,
      exchange.input.body,
      repaired ?? settings.fallbackMessage,
    )
    const response = new Response(fallback, {
      status: upstream.status,
      headers: replacedBodyHeaders(upstream.headers),
    })
    return { response, decision, applied: true, stream: 'hold' }
  }
  const body =
    held.outcome.kind === 'failed'
      ? new Blob(held.chunks).stream()
      : // The verdict is known: the held chunks, then the rest piped natively.
        relay(upstream.body!, {
          reader,
          prefix: held.chunks,
          pending: held.pending,
          onCancel: watch.onCancel,
        })
  return { response: new Response(body, upstream), decision, applied: false, stream: 'hold' }
}

/** The decision of a held stream, by how the holding ended. */
async function heldDecision(
  exchange: Exchange,
  outcome: HoldOutcome<GuardDecision>,
  watch: StreamWatch,
): Promise<GuardDecision> {
  switch (outcome.kind) {
    case 'decided':
      return outcome.value
    case 'ended':
      return watch.atEnd()
    case 'overflow':
      return exchange.started
        ? exchange.settleUnjudged({
            ok: false,
            reason: 'stream-buffer-exceeded',
            message: `the stream passed ${exchange.settings.streamBufferBytes} bytes before the verdict was known`,
          })
        : watch.tooLarge()
    case 'failed':
      return exchange.settleUnjudged({
        ok: false,
        reason: 'upstream-stream-error',
        message: 'the upstream stream broke off before the verdict was known',
      })
  }
}
