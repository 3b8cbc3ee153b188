/**
 * Acting on a whole (not streamed) answer: read its context when the context comes with it,
 * wait for the decision, and pass the answer on or replace it. Every read is bounded.
 */
import { parseJson, type Parsed } from '../json'
import { readLimited } from './body'
import type { GuardDecision } from './decision'
import type { Exchange } from './exchange'
import { relay } from './relay'
import { blockedResponse, errorResponse, type Outcome } from './respond'

const decoder = new TextDecoder()

export async function guardAnswer(exchange: Exchange, response: Response): Promise<Outcome> {
  const { settings } = exchange
  let upstream: Parsed | undefined
  if (!exchange.started) {
    // The context comes with the answer: read it whole (the client gets the same bytes), then judge.
    const read = await readLimited(response.body, settings.maxBodyBytes).catch(() => undefined)
    if (!read) {
      // The upstream's body broke off: there is no whole answer to judge or to pass on.
      const decision = exchange.settleUnjudged({
        ok: false,
        reason: 'upstream-stream-error',
        message: "the upstream's response broke off",
      })
      const broken = errorResponse(
        502,
        'upstream_broken',
        "The upstream RAG endpoint's response broke off.",
      )
      return { response: broken, decision, applied: false }
    }
    if (read.ok) {
      response = new Response(read.bytes, response)
      upstream = parseJson(decoder.decode(read.bytes))
      const context = upstream.ok
        ? settings.format.readResponse(upstream.value)
        : ({
            ok: false,
            reason: 'invalid-response-body',
            message: 'the response body is not JSON',
          } as const)
      if (context.ok) exchange.judge(context.documents)
      else exchange.settleUnjudged(context)
    } else {
      // Too large to judge: the client still gets every byte, unjudged.
      response = new Response(relay(read.reader, { prefix: read.prefix }), response)
      exchange.settleUnjudged({
        ok: false,
        reason: 'response-too-large',
        message: `the response body is larger than ${settings.maxBodyBytes} bytes`,
      })
    }
  }
  const decision = await exchange.pending.promise
  if (decision.verdict !== 'block' || settings.mode !== 'enforce') {
    return { response, decision, applied: false }
  }
  return {
    response: await blocked(exchange, response, upstream, decision),
    decision,
    applied: true,
  }
}

/** The block response: the operator's hook, or the answer replaced in the endpoint's own shape. */
async function blocked(
  exchange: Exchange,
  response: Response,
  upstream: Parsed | undefined,
  decision: GuardDecision,
): Promise<Response> {
  const { c, settings } = exchange
  if (settings.blockResponse) {
    try {
      return await settings.blockResponse(c, decision)
    } catch (error) {
      // A broken hook must not turn a block into a 500: fall back to the default form.
      console.error('RAG Guard: blockResponse threw; using the default block response', error)
    }
  }
  if (!upstream) {
    // The answer was not read yet (the context was in the request): read it, bounded. Past the
    // limit it is not parsed and not sent: the block is built without it.
    const read = await readLimited(response.body, settings.maxBodyBytes).catch(() => undefined)
    if (read && !read.ok) void read.reader.cancel().catch(() => {})
    upstream = read?.ok ? parseJson(decoder.decode(read.bytes)) : { ok: false }
  }
  return blockedResponse(
    settings.format,
    upstream,
    response,
    exchange.input.body,
    settings.fallbackMessage,
    decision,
  )
}
