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
import {
  blockReader,
  hold,
  isNetworkBody,
  readHeld,
  relay,
  untilBroken,
  type HoldOutcome,
} from './relay'
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

function watchStream(exchange: Exchange, format: StreamFormat): StreamWatch {
  const { settings, pending } = exchange
  const parser = new SSEParser()
  const limits = readLimits(settings)
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
      if (needsAnswer && answer.length <= settings.maxInputChars) {
        answer += format.answerPiece!(event) ?? ''
      }
      if (exchange.started) continue
      const context = format.contextFromEvent(event, limits)
      if (context) exchange.judgeContext(context)
    }
  }
  return {
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
      // Once judging has started, only an answer check needs the events (a block is shaped from
      // the held bytes, parsed when it happens).
      if (exchange.started && !needsAnswer) return
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
  const watch = watchStream(exchange, format)
  return settings.mode === 'enforce' && settings.streamMode === 'hold'
    ? holdStream(exchange, upstream, format, watch)
    : relayStream(exchange, upstream, upstream.body!.getReader(), watch)
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
 * Hold mode: the stream is kept (bounded) until the verdict, then sent on, or replaced with a
 * fallback stream of the format's own shape.
 *
 * The upstream is split in two (`tee`, native in workerd): the held branch keeps the bytes, as
 * bytes, in the runtime, until the verdict; the probe branch is read in JavaScript, in blocks, for
 * what the checks need (the context until judging starts, the answer for an answer check) and to
 * count the bytes against the limit. Passed, the held branch is the response body as it is: what
 * was held goes out in one piece and the rest flows natively, with the runtime's backpressure and
 * cancellation. Replaced, the held bytes are parsed then (a block is shaped after the upstream's
 * events), and both branches are cancelled, which stops the upstream.
 */
async function holdStream(
  exchange: Exchange,
  upstream: Response,
  format: StreamFormat,
  watch: StreamWatch,
): Promise<Outcome> {
  const { settings, pending } = exchange
  if (pending.settled) {
    // The verdict came before the stream (a cached verdict, a fast judge): nothing to hold.
    const { decision, repaired } = applied(exchange, pending.settled)
    if (decision.verdict === 'block' || repaired !== undefined) {
      void upstream.body!.cancel().catch(() => {})
      return blocked(exchange, upstream, format, decision, [], repaired)
    }
    return {
      response: new Response(upstream.body, upstream),
      decision,
      applied: false,
      stream: 'hold',
    }
  }
  // What hold mode may keep: while it looks for the context, up to the body limit (the context
  // must be read whole to be judged); once judging has started, the buffer limit more.
  const limit = () => {
    const atStart = watch.receivedAtStart()
    return atStart === undefined
      ? Math.max(settings.maxBodyBytes, settings.streamBufferBytes)
      : atStart + settings.streamBufferBytes
  }
  const network = isNetworkBody(upstream.body!)
  const [probe, held] = upstream.body!.tee()
  const reader = blockReader(probe, network)
  const holding = await hold(
    reader,
    limit,
    () => (exchange.started ? pending.promise : undefined),
    watch.onChunk,
  )
  // The probe has served (a read still pending ends with it); from here the held branch alone
  // keeps the upstream open.
  void reader.cancel().catch(() => {})
  const { decision, repaired } = applied(
    exchange,
    await heldDecision(exchange, holding.outcome, watch),
  )
  const broken = holding.outcome.kind === 'failed'

  if (decision.verdict === 'block' || repaired !== undefined) {
    // The held bytes are parsed only now, to shape the replacement after the upstream's events
    // (all that arrived before a break; else what the probe counted, the rest never read).
    const seen = heldEvents(await readHeld(held, broken ? undefined : holding.received))
    return blocked(exchange, upstream, format, decision, seen, repaired)
  }
  // Passed on: what arrived before a break, then a clean end; else the held branch as it is.
  const body = broken ? untilBroken(held) : held
  return { response: new Response(body, upstream), decision, applied: false, stream: 'hold' }
}

/**
 * The decision a held stream acts on. Repair mode: the held answer is replaced by itself less its
 * unsupported sentences (without the answer at hand, the block it stands in for).
 */
function applied(
  exchange: Exchange,
  verdict: GuardDecision,
): { decision: GuardDecision; repaired?: string } {
  const repair = repairOf(verdict)
  const repaired =
    repair && exchange.answer !== undefined
      ? repairedText(exchange.answer, repair.removed)
      : undefined
  const decision = repair && repaired === undefined ? unrepaired(verdict) : verdict
  return { decision, repaired }
}

/**
 * A replaced stream: the format's own stream shaped after the upstream events `seen`, carrying
 * the repaired answer, or the fallback message (a block).
 */
function blocked(
  exchange: Exchange,
  upstream: Response,
  format: StreamFormat,
  decision: GuardDecision,
  seen: readonly SSEEvent[],
  repaired?: string,
): Outcome {
  const fallback = format.blockStream(
    seen,
    exchange.input.body,
    repaired ?? exchange.settings.fallbackMessage,
  )
  const response = new Response(fallback, {
    status: upstream.status,
    headers: replacedBodyHeaders(upstream.headers),
  })
  return { response, decision, applied: true, stream: 'hold' }
}

/** The events of held bytes. */
function heldEvents(chunks: Uint8Array[]): SSEEvent[] {
  const parser = new SSEParser()
  return [...chunks.flatMap((chunk) => parser.push(chunk)), ...parser.end()]
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
