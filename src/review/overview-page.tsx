/** @jsxImportSource hono/jsx */
/**
 * The overview page (REVIEW_PATH/overview): what the guard did with all traffic in a window —
 * verdicts, scores against the thresholds, the judge's latency and cache, unjudged decisions —
 * drawn from the hourly rollups. Each chart has its numbers in a table one click away (a
 * `<details>`, no script) and links into the review list, filtered the same way.
 */
import type { FC } from 'hono/jsx'
import type { Thresholds } from '../guard/policy'
import { CHECKS, LABEL_WORDS, type Check } from './checks'
import { compact, Key, Lines, paletteColor, ScoreBars, StackedBars, type BarSeries } from './charts'
import {
  VERDICT_SERIES,
  WINDOWS,
  type OverviewRequest,
  type OverviewView,
  type WindowName,
} from './overview'
import { Layout, type Session } from './page'
import { SCORE_BUCKETS } from './rollups'

const DAY_MS = 86_400_000
const date = (time: number) => new Date(time).toISOString().slice(0, 10)
const when = (time: number) => `${new Date(time).toISOString().replace('T', ' ').slice(0, 16)} UTC`
const ms = (value: number) => `${Math.round(value)} ms`
const percent = (value: number) => `${Math.round(value * 1000) / 10}%`
const WINDOW_NAMES: Record<WindowName, string> = {
  '24h': '24 hours',
  '7d': '7 days',
  '30d': '30 days',
}

export interface OverviewPageProps {
  session: Session
  request: OverviewRequest
  view: OverviewView
  routes: string[]
  /** The thresholds each check runs with now, drawn on its histogram. */
  thresholds: Record<Check, Thresholds[]>
  /** How long rollups and decisions are kept, and how often an isolate writes its rollups. */
  retentionDays: number
  flushSeconds: number
}

/** Links into the review list: the page's filters, a time range (a slot's), and more. */
function listLinks(session: Session, request: OverviewRequest, axis: OverviewView['axis']) {
  const list = (from: number, to: number, extra: Record<string, string> = {}) => {
    const query = new URLSearchParams()
    if (request.route) query.set('route', request.route)
    if (request.check) query.set('check', request.check)
    query.set('from', date(from))
    query.set('to', date(to - 1))
    for (const [name, value] of Object.entries(extra)) query.set(name, value)
    return `${session.base}/review?${query}`
  }
  const slotList = (slot: number, extra: Record<string, string> = {}) =>
    list(axis.start + slot * axis.step, axis.start + (slot + 1) * axis.step, extra)
  return { list, slotList }
}
type Links = ReturnType<typeof listLinks>

export const OverviewPage: FC<OverviewPageProps> = (props) => {
  const { session, request, view, routes, thresholds } = props
  const { axis } = view
  const { list, slotList } = listLinks(session, request, axis)
  return (
    <Layout title="Overview" session={session}>
      <h2>Overview: all traffic, last {WINDOW_NAMES[request.window]}</h2>
      <p class="muted" data-field="overview-policy">
        Every decision counts here, passes included (whatever STORE_PASS_RATE stores): each isolate
        adds them up and writes hourly totals every {props.flushSeconds} s. Kept{' '}
        {props.retentionDays} days. {compact(view.total)} decisions in this window.
      </p>
      <Filters session={session} request={request} routes={routes} />
      <Changes view={view} />
      <VerdictsSection view={view} slotList={slotList} />
      {view.histograms.length === 0 ? (
        <p class="note-box" data-field="no-scores">
          No scores in this window.
        </p>
      ) : (
        view.histograms.map((histogram) => (
          <ScoreSection
            histogram={histogram}
            thresholds={thresholds[histogram.check]}
            link={(bucket) =>
              list(axis.start, axis.end, {
                check: histogram.check,
                min: String(bucket / SCORE_BUCKETS),
                max: String((bucket + 1) / SCORE_BUCKETS),
              })
            }
          />
        ))
      )}

      <LatencySection view={view} slotList={slotList} />
      <UnjudgedSection view={view} slotList={slotList} />
    </Layout>
  )
}

/** A filter's select: "any", then each value; the chosen one selected. */
const AnyOf: FC<{
  name: string
  label: string
  values: readonly string[]
  chosen?: string | undefined
}> = ({ name, label, values, chosen }) => (
  <label>
    {label}
    <select name={name}>
      <option value="" selected={!chosen}>
        any
      </option>
      {values.map((value) => (
        <option value={value} selected={chosen === value}>
          {value}
        </option>
      ))}
    </select>
  </label>
)

const Filters: FC<{ session: Session; request: OverviewRequest; routes: string[] }> = ({
  session,
  request,
  routes,
}) => (
  <form class="filters" method="get" action={`${session.base}/overview`}>
    <label>
      Window
      <select name="window">
        {(Object.keys(WINDOWS) as WindowName[]).map((name) => (
          <option value={name} selected={request.window === name}>
            {WINDOW_NAMES[name]}
          </option>
        ))}
      </select>
    </label>
    <AnyOf name="route" label="Route" values={routes} chosen={request.route} />
    <AnyOf name="check" label="Check" values={CHECKS} chosen={request.check} />
    <button type="submit" class="primary">
      Show
    </button>
  </form>
)

const verdictOf = (kind: string) => (kind === 'shadow-block' ? 'block' : kind)
const slotsOf = (view: OverviewView) => Array.from({ length: view.axis.slots }, (_, slot) => slot)

const VerdictsSection: FC<{ view: OverviewView; slotList: Links['slotList'] }> = ({
  view,
  slotList,
}) => {
  const { axis } = view
  const slots = slotsOf(view)
  return (
    <section class="panel" data-chart="verdicts">
      <h3>Verdicts over time</h3>
      <Key items={VERDICT_SERIES} />
      <StackedBars
        label={`Verdicts per ${slotLabelUnit(axis.step)}`}
        axis={axis}
        series={view.verdicts as BarSeries[]}
        changes={view.changes}
        link={(slot, series) => slotList(slot, { verdict: verdictOf(series.kind) })}
      />
      <details class="numbers">
        <summary>Numbers</summary>
        <table data-table="verdicts">
          <thead>
            <tr>
              <th>from</th>
              {view.verdicts.map((series) => (
                <th>{series.name}</th>
              ))}
              <th>all</th>
            </tr>
          </thead>
          <tbody>
            {slots.map((slot) => (
              <tr>
                <td class="num">
                  <a href={slotList(slot)}>{when(axis.start + slot * axis.step)}</a>
                </td>
                {view.verdicts.map((series) => (
                  <td class="num">{series.values[slot] ?? 0}</td>
                ))}
                <td class="num">
                  {view.verdicts.reduce((sum, series) => sum + (series.values[slot] ?? 0), 0)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </section>
  )
}

const LatencySection: FC<{ view: OverviewView; slotList: Links['slotList'] }> = ({
  view,
  slotList,
}) => {
  const { axis } = view
  const slots = slotsOf(view)
  return (
    <section class="panel" data-chart="latency">
      <h3>Judge latency</h3>
      <Key items={[view.latency.p50, view.latency.p95]} />
      <Lines
        label="Judge latency p50 and p95, in milliseconds (cache hits left out)"
        axis={axis}
        series={[view.latency.p50, view.latency.p95]}
        changes={view.changes}
        format={ms}
      />
      <h3>Cache hit rate</h3>
      <Key items={[view.cacheRate]} />
      <Lines
        label="Verdict cache hit rate"
        axis={axis}
        series={[view.cacheRate]}
        changes={view.changes}
        format={percent}
        max={1}
        height={160}
      />
      <details class="numbers">
        <summary>Numbers</summary>
        <p class="muted">
          Percentiles come from latency buckets (25, 50, 100, 200, 300, 500, 750 ms, 1, 1.5, 2, 3,
          5, 10 s), interpolated within the bucket they fall in.
        </p>
        <table data-table="latency">
          <thead>
            <tr>
              <th>from</th>
              <th>judge calls</th>
              <th>p50</th>
              <th>p95</th>
              <th>cache lookups</th>
              <th>hit rate</th>
            </tr>
          </thead>
          <tbody>
            {slots.map((slot) => {
              const p50 = view.latency.p50.values[slot]
              const p95 = view.latency.p95.values[slot]
              const rate = view.cacheRate.values[slot]
              return (
                <tr>
                  <td class="num">
                    <a href={slotList(slot)}>{when(axis.start + slot * axis.step)}</a>
                  </td>
                  <td class="num">{view.latency.calls[slot]}</td>
                  <td class="num">{p50 === undefined ? '–' : ms(p50)}</td>
                  <td class="num">{p95 === undefined ? '–' : ms(p95)}</td>
                  <td class="num">{view.cacheLookups[slot]}</td>
                  <td class="num">{rate === undefined ? '–' : percent(rate)}</td>
                </tr>
              )
            })}
          </tbody>
        </table>
      </details>
    </section>
  )
}

const UnjudgedSection: FC<{ view: OverviewView; slotList: Links['slotList'] }> = ({
  view,
  slotList,
}) => {
  const { axis } = view
  const slots = slotsOf(view)
  const reasons: BarSeries[] = view.reasons.map((series, index) => ({
    kind: 'reason',
    name: series.name,
    values: series.values as number[],
    color: paletteColor(index),
  }))
  return (
    <section class="panel" data-chart="unjudged">
      <h3>Unjudged decisions, by reason</h3>
      {reasons.length === 0 ? (
        <p class="muted" data-field="no-unjudged">
          Every decision in this window came from a score.
        </p>
      ) : (
        <>
          <Key items={reasons} />
          <StackedBars
            label={`Decisions without a score, by reason, per ${slotLabelUnit(axis.step)}`}
            axis={axis}
            series={reasons}
            changes={view.changes}
            link={(slot) => slotList(slot)}
            height={180}
          />
          <details class="numbers">
            <summary>Numbers</summary>
            <table data-table="unjudged">
              <thead>
                <tr>
                  <th>from</th>
                  {reasons.map((series) => (
                    <th>{series.name}</th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {slots.map((slot) => (
                  <tr>
                    <td class="num">
                      <a href={slotList(slot)}>{when(axis.start + slot * axis.step)}</a>
                    </td>
                    {reasons.map((series) => (
                      <td class="num">{series.values[slot] ?? 0}</td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </details>
        </>
      )}
    </section>
  )
}

const slotLabelUnit = (step: number) =>
  step >= DAY_MS ? 'day' : step > 3_600_000 ? `${step / 3_600_000} hours` : 'hour'

/** The changes of settings in the window, numbered as the dashed lines on the time charts. */
const Changes: FC<{ view: OverviewView }> = ({ view }) => (
  <section class="panel" data-chart="changes">
    <h3>Changes</h3>
    {view.changes.length === 0 ? (
      <p class="muted" data-field="no-changes">
        No change of judge model, prompt version, estimator or thresholds in this window.
      </p>
    ) : (
      <ol class="changes" data-table="changes">
        {view.changes.map((change) => (
          <li>
            {when(change.time)} · {change.check} on {change.routes.join(', ')}:{' '}
            {change.what.join('; ')}
          </li>
        ))}
      </ol>
    )}
    <p class="muted">
      Each is a dashed line, with its number, on the charts over time. Seen in the rollups: the
      first hour a check ran with the new settings.
    </p>
  </section>
)

const ScoreSection: FC<{
  histogram: OverviewView['histograms'][number]
  thresholds: Thresholds[]
  link: (bucket: number) => string
}> = ({ histogram, thresholds, link }) => {
  const words = LABEL_WORDS[histogram.check]
  const buckets = histogram.counts.map((_, bucket) => bucket)
  const total = histogram.counts.reduce((sum, count) => sum + count, 0)
  const labeled: BarSeries[] | undefined = histogram.labeled && [
    { kind: 'yes', name: `labeled ${words.yes}`, values: histogram.labeled.yes },
    { kind: 'no', name: `labeled ${words.no}`, values: histogram.labeled.no },
  ]
  return (
    <section class="panel" data-chart={`scores-${histogram.check}`}>
      <h3>{histogram.check}: score distribution</h3>
      <p class="muted">
        All scores of this check in the window ({compact(total)}), in buckets of {1 / SCORE_BUCKETS}
        ; the dashed lines are the thresholds it runs with now.
      </p>
      <ScoreBars
        label={`${histogram.check} scores, all traffic`}
        series={[{ kind: 'scores', name: 'decisions', values: histogram.counts }]}
        thresholds={thresholds}
        link={link}
      />
      {labeled && (
        <>
          <h3>{histogram.check}: labeled decisions</h3>
          <Key items={labeled} />
          <ScoreBars
            label={`${histogram.check} scores of labeled decisions`}
            series={labeled}
            thresholds={thresholds}
            height={160}
          />
        </>
      )}
      <details class="numbers">
        <summary>Numbers</summary>
        <table data-table={`scores-${histogram.check}`}>
          <thead>
            <tr>
              <th>score</th>
              <th>decisions</th>
              <th>share</th>
              {labeled && <th>{labeled[0]!.name}</th>}
              {labeled && <th>{labeled[1]!.name}</th>}
            </tr>
          </thead>
          <tbody>
            {buckets.map((bucket) => (
              <tr>
                <td class="num">
                  <a href={link(bucket)}>
                    {(bucket / SCORE_BUCKETS).toFixed(2)}–
                    {((bucket + 1) / SCORE_BUCKETS).toFixed(2)}
                  </a>
                </td>
                <td class="num">{histogram.counts[bucket]}</td>
                <td class="num">{total ? percent(histogram.counts[bucket]! / total) : '–'}</td>
                {labeled && <td class="num">{labeled[0]!.values[bucket]}</td>}
                {labeled && <td class="num">{labeled[1]!.values[bucket]}</td>}
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </section>
  )
}
