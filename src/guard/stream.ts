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
import { hold, relay } from './relay'
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

export async function guardStream(
  exchange: Exchange,
  upstream: Response,
  format: StreamFormat,
): Promise<Outcome> {
  const { settings, pending } = exchange
  const reader = upstream.body!.getReader()
  const parser = new SSEParser()
  const holding = settings.mode === 'enforce' && settings.streamMode === 'hold'
  const limits = readLimits(settings)
  /** Hold mode keeps what it saw (bounded by its buffer) to shape a block after it. */
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
  const onChunk = (chunk: Uint8Array) => {
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
  }
  /** The decision once the upstream has ended: without a context seen, there is none to judge. */
  const atEnd = (): Promise<GuardDecision> => {
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
  }
  const onCancel = () => {
    exchange.cancel()
    if (!exchange.started) {
      exchange.settleUnjudged({
        ok: false,
        reason: 'judge-aborted',
        message: 'the client went away before the stream showed its context',
      })
    }
  }

  if (!holding) {
    const shadow = settings.mode === 'shadow'
    const body = relay(upstream.body!, {
      reader,
      // Once judging has started, nothing more is watched (unless a check needs the answer): the
      // rest of the stream is piped natively.
      watching: () => !exchange.started || needsAnswer,
      onChunk,
      onEnd: async (unseen) => {
        if (shadow) {
          // Nothing is added to a shadow stream: its end is not held up for the verdict.
          void atEnd()
          return undefined
        }
        // Unseen, the stream's last byte is unknown: a line end first keeps the comment its own line.
        return annotation(await atEnd(), exchange.details, unseen || midLine)
      },
      onCancel,
    })
    return {
      response: new Response(body, upstream),
      decision: pending.promise,
      applied: false,
      stream: shadow ? 'shadow' : 'annotate',
    }
  }

  // What hold mode may keep: while it looks for the context, up to the body limit (the context
  // must be read whole to be judged); once judging has started, the buffer limit more.
  const limit = () =>
    receivedAtStart === undefined
      ? Math.max(settings.maxBodyBytes, settings.streamBufferBytes)
      : receivedAtStart + settings.streamBufferBytes
  const held = await hold(
    reader,
    limit,
    () => (exchange.started ? pending.promise : undefined),
    onChunk,
  )
  let decision: GuardDecision
  switch (held.outcome.kind) {
    case 'decided':
      decision = held.outcome.value
      break
    case 'ended':
      decision = await atEnd()
      break
    case 'overflow':
      decision = exchange.started
        ? exchange.settleUnjudged({
            ok: false,
            reason: 'stream-buffer-exceeded',
            message: `the stream passed ${settings.streamBufferBytes} bytes before the verdict was known`,
          })
        : tooLarge()
      break
    case 'failed':
      decision = exchange.settleUnjudged({
        ok: false,
        reason: 'upstream-stream-error',
        message: 'the upstream stream broke off before the verdict was known',
      })
      break
  }

  if (decision.verdict === 'block') {
    held.pending?.catch(() => {})
    void reader.cancel().catch(() => {})
    const fallback = format.blockStream(seen, exchange.input.body, settings.fallbackMessage)
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
        relay(upstream.body!, { reader, prefix: held.chunks, pending: held.pending, onCancel })
  return { response: new Response(body, upstream), decision, applied: false, stream: 'hold' }
}
