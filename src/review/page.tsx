/** @jsxImportSource hono/jsx */
/**
 * The review page's HTML, server-rendered with Hono's JSX: plain links and forms, no script, so
 * the whole flow (filter, page, open, label, sign in and out) works without JavaScript. Text from
 * the traffic is escaped by the JSX runtime; the Content-Security-Policy forbids scripts anyway.
 */
import type { Child, FC } from 'hono/jsx'
import { splitSentences } from '../judge/sentences'
import { LABEL_WORDS, recordCheck, type Check } from './checks'
import { OVERVIEW_CSS } from './charts'
import {
  cursorText,
  filterQuery,
  type Cursor,
  type DecisionDetail,
  type ListFilters,
  type ListRow,
} from './queries'

const CSS = `
:root { color-scheme: light; --ink: #1d232b; --muted: #5b6673; --line: #d9dee4; --bg: #f6f7f9;
  --pass: #2f7d4f; --flag: #a86a00; --block: #b8422e; --accent: #2453a6; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
header { display: flex; align-items: center; gap: 20px; padding: 10px 24px; background: #fff; border-bottom: 1px solid var(--line); }
header h1 { font-size: 16px; margin: 0; }
header nav { display: flex; gap: 16px; flex: 1; }
header form { margin: 0; }
main { padding: 18px 24px 40px; max-width: 1280px; }
a { color: var(--accent); }
h2 { font-size: 18px; margin: 0 0 12px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.panel h3:first-child { margin-top: 0; }
td.question { max-width: 360px; overflow-wrap: anywhere; }
.muted { color: var(--muted); }
.note-box { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; margin-bottom: 14px; }
.notice { background: #eef6ee; border-color: #b9dbbe; }
.warning { background: #fdf3e4; border-color: #efd29f; }
form.filters { display: flex; flex-wrap: wrap; gap: 10px 14px; align-items: end; background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; margin-bottom: 14px; }
form.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: 2px; }
input, select, textarea, button { font: inherit; }
input[type=number] { width: 6em; }
button { border: 1px solid var(--line); background: #fff; border-radius: 5px; padding: 5px 12px; cursor: pointer; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; background: #fafbfc; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
td.verdict { white-space: nowrap; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; }
.badge.pass { background: var(--pass); } .badge.flag { background: var(--flag); } .badge.block { background: var(--block); }
.label { display: inline-block; padding: 0 6px; margin-right: 4px; border-radius: 4px; font-size: 12px; border: 1px solid var(--line); }
.label.yes { color: var(--pass); border-color: var(--pass); } .label.no { color: var(--block); border-color: var(--block); }
.pager { display: flex; gap: 16px; margin-top: 12px; }
.columns { display: grid; grid-template-columns: minmax(0, 3fr) minmax(300px, 2fr); gap: 20px; }
.panel { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; margin-bottom: 16px; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; }
.sentence { border-bottom: 2px solid var(--line); }
.sentence.flag { border-bottom: 2px dashed var(--flag); }
.sentence.block { border-bottom: 3px double var(--block); background: #fbeae7; }
.sentence .tag { font-size: 11px; color: var(--muted); white-space: nowrap; }
.sentence.block .tag { color: var(--block); font-weight: 600; }
ol.documents { padding-left: 22px; margin: 0; } ol.documents li { margin-bottom: 8px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 3px 12px; margin: 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
fieldset { border: 1px solid var(--line); border-radius: 6px; margin: 0 0 12px; padding: 8px 12px 12px; }
legend { font-weight: 600; padding: 0 4px; }
fieldset p { margin: 0 0 8px; color: var(--muted); font-size: 13px; }
button[aria-pressed=true] { outline: 2px solid var(--ink); font-weight: 700; }
button.yes { color: var(--pass); border-color: var(--pass); } button.no { color: var(--block); border-color: var(--block); }
textarea { width: 100%; min-height: 64px; }
${OVERVIEW_CSS}`

const CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

/** Headers of every review response: no script, no framing, no caching, no referrer. */
export const PAGE_HEADERS = {
  'content-security-policy': CSP,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
}

/** A page as the HTML a response carries. */
export const render = (page: Child): string => `<!doctype html>${String(page)}`

export interface Session {
  base: string
  /** The operator, as the caller check names them. */
  caller: string
  /** A form token for this operator. */
  formToken: string
  /** Whether the operator signed in with a session (and so can sign out). */
  session: boolean
  /** Whether sessions are kept in the store (and so can be ended everywhere). */
  revocable: boolean
}

export const Layout: FC<{ title: string; session?: Session; children?: Child }> = ({
  title,
  session,
  children,
}) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <title>{title} · RAG Guard review</title>
      <style dangerouslySetInnerHTML={{ __html: CSS }} />
    </head>
    <body>
      <header>
        <h1>RAG Guard review</h1>
        {session && (
          <nav>
            <a href={`${session.base}/review`}>Decisions</a>
            <a href={`${session.base}/overview`}>Overview</a>
            <a href={`${session.base}/labels.jsonl`}>Export labels (JSONL)</a>
          </nav>
        )}
        {session && (
          <span class="muted" data-field="operator">
            {session.caller}
          </span>
        )}
        {session?.session && (
          <form method="post" action={`${session.base}/logout`}>
            <input type="hidden" name="csrf" value={session.formToken} />
            <button type="submit">Sign out</button>
          </form>
        )}
        {session?.revocable && (
          <form method="post" action={`${session.base}/logout`}>
            <input type="hidden" name="csrf" value={session.formToken} />
            {/* Sessions are signed in with tokens; an Access identity has none of its own. */}
            {session.caller.startsWith('token:') && (
              <button
                type="submit"
                name="everywhere"
                value="mine"
                title="Ends every session signed in with your token, a copied one included"
              >
                Sign out everywhere
              </button>
            )}
            <button
              type="submit"
              name="everywhere"
              value="all"
              title="Ends the sessions of every operator (for a token that leaked)"
            >
              End every session
            </button>
          </form>
        )}
      </header>
      <main>{children}</main>
    </body>
  </html>
)

const time = (ms: number) => `${new Date(ms).toISOString().replace('T', ' ').slice(0, 19)} UTC`
/**
 * The check that decided a flag or a block. A pass was stopped by no check: the check its row
 * names is the one it was scored by, which "Decided by" would misreport.
 */
const decidedBy = (row: { verdict: string; check_name: string | null }) =>
  row.verdict === 'pass' ? undefined : (row.check_name ?? undefined)

const score = (value: number | null | undefined) =>
  value === null || value === undefined ? '–' : value.toFixed(4)

const Verdict: FC<{ verdict: string }> = ({ verdict }) => (
  <span class={`badge ${verdict}`}>{verdict}</span>
)

/** The labels a decision has, as small tags. */
const Labels: FC<{ sufficient: number | null; grounded: number | null }> = ({
  sufficient,
  grounded,
}) => (
  <>
    {sufficient !== null && (
      <span class={`label ${sufficient ? 'yes' : 'no'}`}>
        {sufficient ? LABEL_WORDS.sufficiency.yes : LABEL_WORDS.sufficiency.no}
      </span>
    )}
    {grounded !== null && (
      <span class={`label ${grounded ? 'yes' : 'no'}`}>
        {grounded ? LABEL_WORDS.groundedness.yes : LABEL_WORDS.groundedness.no}
      </span>
    )}
    {sufficient === null && grounded === null && <span class="muted">–</span>}
  </>
)

export interface StoreInfo {
  passRate: number
  content: boolean
  retentionDays: number
}

function Option(props: { value: string; selected: string | undefined; children: Child }) {
  return (
    <option value={props.value} selected={props.selected === props.value}>
      {props.children}
    </option>
  )
}

/** A score bound of the list's filters: a number from 0 to 1, or empty. */
function ScoreInput(props: { label: string; name: string; value: number | undefined }) {
  return (
    <label>
      {props.label}
      <input type="number" name={props.name} min="0" max="1" step="any" value={props.value ?? ''} />
    </label>
  )
}

export const ListPage: FC<{
  session: Session
  store: StoreInfo
  filters: ListFilters
  routes: string[]
  rows: ListRow[]
  older?: Cursor
  newer?: Cursor
}> = ({ session, store, filters, routes, rows, older, newer }) => {
  const query = filterQuery(filters)
  const date = (value: number | undefined, shift = 0) =>
    value === undefined ? '' : new Date(value - shift).toISOString().slice(0, 10)
  const page = (key: 'before' | 'after', cursor: Cursor) => {
    const next = new URLSearchParams(query)
    next.set(key, cursorText(cursor))
    return `${session.base}/review?${next}`
  }
  const here = query.toString()
  return (
    <Layout title="Decisions" session={session}>
      <h2>Decisions, newest first</h2>
      <p class="muted" data-field="store-policy">
        Flags and blocks are all stored; passes at {Math.round(store.passRate * 1000) / 10}%.{' '}
        {store.content
          ? 'Question, documents and answer are stored (STORE_CONTENT).'
          : 'Content is not stored (STORE_CONTENT is off): hashes, sizes and scores only.'}{' '}
        Kept {store.retentionDays} days.
      </p>
      <form class="filters" method="get" action={`${session.base}/review`}>
        <label>
          Verdict
          <select name="verdict">
            <Option value="" selected={filters.verdict ?? ''}>
              any
            </Option>
            {(['block', 'flag', 'pass'] as const).map((verdict) => (
              <Option value={verdict} selected={filters.verdict}>
                {verdict}
              </Option>
            ))}
          </select>
        </label>
        <label>
          Check that decided
          <select name="check">
            <Option value="" selected={filters.check ?? ''}>
              any
            </Option>
            <Option value="sufficiency" selected={filters.check}>
              sufficiency
            </Option>
            <Option value="groundedness" selected={filters.check}>
              groundedness
            </Option>
            <Option value="none" selected={filters.check}>
              none (no score)
            </Option>
          </select>
        </label>
        <label>
          Route
          <select name="route">
            <Option value="" selected={filters.route ?? ''}>
              any
            </Option>
            {routes.map((route) => (
              <Option value={route} selected={filters.route}>
                {route}
              </Option>
            ))}
          </select>
        </label>
        <label>
          From (UTC)
          <input type="date" name="from" value={date(filters.from)} />
        </label>
        <label>
          To (UTC)
          <input type="date" name="to" value={date(filters.to, 86_400_000)} />
        </label>
        <ScoreInput label="Score ≥" name="min" value={filters.minScore} />
        <ScoreInput label="Score ≤" name="max" value={filters.maxScore} />
        <label>
          Labeled
          <select name="labeled">
            <Option value="" selected={filters.labeled ?? ''}>
              any
            </Option>
            <Option value="no" selected={filters.labeled}>
              not yet
            </Option>
            <Option value="yes" selected={filters.labeled}>
              labeled
            </Option>
          </select>
        </label>
        <button type="submit" class="primary">
          Filter
        </button>
        {here && <a href={`${session.base}/review`}>Clear</a>}
      </form>
      {rows.length === 0 ? (
        <p class="note-box" data-field="empty">
          No decisions match.
        </p>
      ) : (
        <table data-table="decisions">
          <thead>
            <tr>
              <th>Time</th>
              <th>Question</th>
              <th>Verdict</th>
              <th>Decided by</th>
              <th>Score</th>
              <th>Sufficiency</th>
              <th>Groundedness</th>
              <th>Route</th>
              <th>Reason</th>
              <th>Labels</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr data-id={row.id}>
                <td class="num">
                  <a href={`${session.base}/review/${row.id}${here ? `?${here}` : ''}`}>
                    {time(row.time)}
                  </a>
                </td>
                <td class="question">
                  {row.question !== null ? (
                    `${row.question}${row.question.length === 100 ? '…' : ''}`
                  ) : (
                    <span class="muted">
                      {row.content === 'purged'
                        ? 'purged'
                        : row.content === 'capped'
                          ? 'not stored (caller over its hourly cap)'
                          : 'not stored'}
                    </span>
                  )}
                </td>
                <td class="verdict">
                  <Verdict verdict={row.verdict} />
                  {row.mode === 'shadow' && <span class="muted"> (shadow)</span>}
                </td>
                <td data-field="decided-by">{decidedBy(row) ?? '–'}</td>
                <td class="num">{score(row.score)}</td>
                <td class="num">{score(row.sufficiency_score)}</td>
                <td class="num">{score(row.groundedness_score)}</td>
                <td>{row.route}</td>
                <td>{row.reason ?? ''}</td>
                <td>
                  <Labels sufficient={row.sufficient} grounded={row.grounded} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <nav class="pager">
        {newer && (
          <a href={page('after', newer)} rel="prev">
            ← Newer
          </a>
        )}
        {newer && <a href={`${session.base}/review${here ? `?${here}` : ''}`}>Newest</a>}
        {older && (
          <a href={page('before', older)} rel="next">
            Older →
          </a>
        )}
      </nav>
    </Layout>
  )
}

/** One check's outcome in a record, as the detail view lists it. */
interface CheckView {
  check: Check
  verdict?: string
  score?: number
  pTrue?: number
  pFalse?: number
  reason?: string
  promptVersion?: string
  cache?: string
}

function checkViews(record: Record<string, unknown>): CheckView[] {
  const checks = record.checks
  if (typeof checks === 'object' && checks !== null) {
    return Object.entries(checks as Record<string, Record<string, unknown>>).map(
      ([check, part]) => ({ check: check as Check, ...(part as Omit<CheckView, 'check'>) }),
    )
  }
  return [
    {
      check: recordCheck(record),
      verdict: record.verdict as string,
      score: record.score as number | undefined,
      pTrue: record.pTrue as number | undefined,
      pFalse: record.pFalse as number | undefined,
      reason: record.reason as string | undefined,
      promptVersion: record.promptVersion as string | undefined,
      cache: record.cache as string | undefined,
    },
  ]
}

const QUESTIONS: Record<Check, string> = {
  sufficiency: 'Do the documents contain what is needed to answer the question?',
  groundedness: 'Is every statement of the answer supported by the documents?',
}

const LabelButtons: FC<{ check: Check; current: number | null }> = ({ check, current }) => {
  const field = check === 'sufficiency' ? 'sufficient' : 'grounded'
  const words = LABEL_WORDS[check]
  const noun = check === 'sufficiency' ? 'Context' : 'Answer'
  return (
    <fieldset data-check={check}>
      <legend>{check}</legend>
      <p>{QUESTIONS[check]}</p>
      <button
        type="submit"
        name={field}
        value="yes"
        class="yes"
        aria-pressed={current === 1 ? 'true' : 'false'}
      >
        {noun} {words.yes}
      </button>{' '}
      <button
        type="submit"
        name={field}
        value="no"
        class="no"
        aria-pressed={current === 0 ? 'true' : 'false'}
      >
        {noun} {words.no}
      </button>{' '}
      {current !== null && (
        <button type="submit" name={field} value="clear">
          Clear
        </button>
      )}
    </fieldset>
  )
}

const Content: FC<{ decision: DecisionDetail; what: 'question' | 'answer' }> = ({
  decision,
  what,
}) => {
  const text = decision[what]
  if (text !== null) return <p class="text">{text}</p>
  return <p class="muted">{notStored(decision.content, what)}</p>
}

function notStored(content: string, what: string): string {
  if (content === 'purged') return `The ${what} was purged (past the retention period).`
  if (content === 'not-stored') return `Content not stored (STORE_CONTENT is off).`
  if (content === 'capped') {
    return `Content not stored: this caller had stored more than STORE_CONTENT_HOURLY_BYTES of text in that hour.`
  }
  return what === 'answer'
    ? 'No answer was read: the guard reads the answer for the groundedness check, or when the context came with it.'
    : `No ${what} in this decision.`
}

interface SentenceView {
  sentence: number
  verdict?: string
  score?: number
  reason?: string
}

/** The per-sentence groundedness of a record (its own, or its groundedness check's), if any. */
function sentenceViews(record: Record<string, unknown>) {
  const checks = record.checks as Record<string, Record<string, unknown>> | undefined
  const grounded = checks?.groundedness ?? record
  const sentences = grounded.sentences as SentenceView[] | undefined
  const repaired = grounded.repaired as { removed?: number[] } | undefined
  return sentences ? { sentences, removed: new Set(repaired?.removed ?? []) } : undefined
}

/** A sentence's tag: its number, score (or reason), and in words whether it is supported. */
function sentenceTag(view: SentenceView | undefined, removed: boolean, index: number): string {
  if (!view) return `[${index}: not judged]`
  const value = view.score !== undefined ? score(view.score) : (view.reason ?? 'no score')
  const word =
    view.verdict === 'block'
      ? 'unsupported'
      : view.verdict === 'flag'
        ? 'doubtful'
        : view.verdict === 'pass'
          ? 'supported'
          : ''
  return `[${index}: ${value}${word ? ` ${word}` : ''}${removed ? ', removed' : ''}]`
}

/**
 * The answer with each sentence's score after it, for a groundedness check judged per sentence:
 * unsupported sentences underlined twice and tagged in words (readable without colour); without
 * the answer's text, the scores alone.
 */
const SentenceAnswer: FC<{ decision: DecisionDetail; record: Record<string, unknown> }> = ({
  decision,
  record,
}) => {
  const views = sentenceViews(record)
  if (!views) return <Content decision={decision} what="answer" />
  const byNumber = new Map(views.sentences.map((view) => [view.sentence, view]))
  const text = decision.answer
  return (
    <div data-field="sentences">
      {text !== null ? (
        <p class="text">
          {splitSentences(text).map(({ index, text: sentence }) => {
            const view = byNumber.get(index)
            return (
              <span class={`sentence ${view?.verdict ?? ''}`} data-sentence={index}>
                {sentence.trimEnd()}{' '}
                <span class="tag">{sentenceTag(view, views.removed.has(index), index)}</span>
                {sentence.slice(sentence.trimEnd().length)}
              </span>
            )
          })}
        </p>
      ) : (
        <>
          <p class="muted">{notStored(decision.content, 'answer')}</p>
          <ol>
            {views.sentences.map((view) => (
              <li>{sentenceTag(view, views.removed.has(view.sentence), view.sentence)}</li>
            ))}
          </ol>
        </>
      )}
    </div>
  )
}

/** "item 2 of 3" for a batch's item (its record says which); undefined otherwise. */
function batchItem(value: unknown): string | undefined {
  const item = value as { index?: unknown; size?: unknown } | undefined
  if (typeof item?.index !== 'number' || typeof item.size !== 'number') return undefined
  return `item ${item.index + 1} of ${item.size}`
}

export const DetailPage: FC<{
  session: Session
  decision: DecisionDetail
  /** The list's query string, to go back to the same page of the list. */
  back: string
  saved: boolean
}> = ({ session, decision, back, saved }) => {
  const record = JSON.parse(decision.record) as Record<string, unknown>
  let documents: string[] | undefined
  if (decision.documents !== null) documents = JSON.parse(decision.documents) as string[]
  const facts: Array<[string, unknown]> = [
    ['time', time(decision.time)],
    ['request id', decision.request_id],
    ['route', record.route],
    ['path', `${String(record.method ?? '')} ${String(record.path ?? '')}`],
    ['batch', batchItem(record.batchItem)],
    ['format', record.format],
    ['mode', decision.mode],
    ['applied', record.applied === true ? 'yes' : 'no'],
    ['status', record.status],
    ['stream', record.stream],
    ['model', record.model],
    ['caller', record.caller],
    [
      'judge latency',
      record.judgeLatencyMs === undefined ? undefined : `${record.judgeLatencyMs} ms`,
    ],
    ['truncated', record.truncated ? 'yes: the judge saw only part of the documents' : undefined],
    [
      'stored at',
      decision.sample_rate < 1 ? `a pass kept at a rate of ${decision.sample_rate}` : undefined,
    ],
    [
      'question',
      `${String(record.questionChars ?? '–')} characters, SHA-256 ${decision.question_hash ?? '–'}`,
    ],
    [
      'documents',
      `${String(record.contextDocuments ?? '–')} (${String(record.contextChars ?? '–')} characters), SHA-256 ${decision.context_hash ?? '–'}`,
    ],
  ]
  return (
    <Layout title="Decision" session={session}>
      <p>
        <a href={`${session.base}/review${back ? `?${back}` : ''}`}>← Back to the list</a>
      </p>
      {saved && (
        <p class="note-box notice" data-field="saved">
          Labels saved.
        </p>
      )}
      <h2>
        <Verdict verdict={decision.verdict} />{' '}
        {decision.verdict === 'pass' ? '· ' : `${decidedBy(decision) ?? 'no check'} · `}
        {score(decision.score)}
        {decision.reason ? ` · ${decision.reason}` : ''}
        {decision.mode === 'shadow' && <span class="muted"> (shadow mode: not applied)</span>}
      </h2>
      <div class="columns">
        <div>
          <section class="panel">
            <h3>Question</h3>
            <Content decision={decision} what="question" />
          </section>
          <section class="panel">
            <h3>Documents</h3>
            {documents ? (
              <ol class="documents">
                {documents.map((document) => (
                  <li>
                    <p class="text">{document}</p>
                  </li>
                ))}
              </ol>
            ) : (
              <p class="muted">{notStored(decision.content, 'documents')}</p>
            )}
          </section>
          <section class="panel">
            <h3>Answer</h3>
            <SentenceAnswer decision={decision} record={record} />
          </section>
        </div>
        <div>
          <section class="panel">
            <h3>Label</h3>
            <form method="post" action={`${session.base}/review/${decision.id}`}>
              <input type="hidden" name="csrf" value={session.formToken} />
              <input type="hidden" name="back" value={back} />
              <LabelButtons check="sufficiency" current={decision.sufficient} />
              <LabelButtons check="groundedness" current={decision.grounded} />
              <label>
                Note
                <textarea name="note" maxlength={2000}>
                  {decision.note ?? ''}
                </textarea>
              </label>
              <p>
                <button type="submit" name="save" value="note">
                  Save note
                </button>
                {decision.reviewer && (
                  <span class="muted">
                    {' '}
                    Last labeled by {decision.reviewer}
                    {decision.reviewed_at ? `, ${time(decision.reviewed_at)}` : ''}
                  </span>
                )}
              </p>
            </form>
          </section>
          <section class="panel">
            <h3>Checks</h3>
            <table>
              <thead>
                <tr>
                  <th>check</th>
                  <th>verdict</th>
                  <th>score</th>
                  <th>P(True) / P(False)</th>
                  <th>reason</th>
                </tr>
              </thead>
              <tbody>
                {checkViews(record).map((view) => (
                  <tr data-check={view.check}>
                    <td>
                      {view.check}
                      {view.promptVersion && <div class="muted">{view.promptVersion}</div>}
                    </td>
                    <td>{view.verdict && <Verdict verdict={view.verdict} />}</td>
                    <td class="num">{score(view.score)}</td>
                    <td class="num">
                      {view.pTrue === undefined
                        ? '–'
                        : `${score(view.pTrue)} / ${score(view.pFalse)}`}
                    </td>
                    <td>
                      {view.reason ?? ''}
                      {view.cache === 'hit' ? ' (cached)' : ''}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </section>
          <section class="panel">
            <h3>Decision</h3>
            <dl class="facts">
              {facts
                .filter(([, value]) => value !== undefined && value !== null && value !== '')
                .map(([name, value]) => (
                  <>
                    <dt>{name}</dt>
                    <dd>{String(value)}</dd>
                  </>
                ))}
            </dl>
          </section>
        </div>
      </div>
    </Layout>
  )
}

export const SignInPage: FC<{ base: string; failed?: boolean }> = ({ base, failed }) => (
  <Layout title="Sign in">
    <h2>Sign in</h2>
    <div class="note-box" style="max-width: 520px">
      <p>
        The review page is for the guard's operators: sign in with an operator token (one of
        GUARD_OPERATOR_TOKENS). With Cloudflare Access, an operator's Access identity is enough.
      </p>
      {failed && (
        <p class="note-box warning" data-field="sign-in-failed">
          That is not an operator token.
        </p>
      )}
      <form method="post" action={`${base}/login`}>
        <p>
          <label>
            Operator token{' '}
            <input type="password" name="token" autocomplete="off" required size={40} />
          </label>
        </p>
        <button type="submit" class="primary">
          Sign in
        </button>
      </form>
    </div>
  </Layout>
)

export const MessagePage: FC<{ title: string; session?: Session; children?: Child }> = ({
  title,
  session,
  children,
}) => (
  <Layout title={title} session={session}>
    <h2>{title}</h2>
    <div class="note-box">{children}</div>
  </Layout>
)
