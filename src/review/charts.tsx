/** @jsxImportSource hono/jsx */
/**
 * The overview's charts as SVG drawn on the server: bars and lines in plain elements, each mark
 * with a `<title>` (the browser shows it on hover, a screen reader reads it) and, where a list of
 * decisions matches, a link into the review list. No script, no external resource: the page's
 * Content-Security-Policy stays as strict as the review list's.
 */
import type { Child, FC } from 'hono/jsx'
import type { TimeAxis } from './overview'

export const OVERVIEW_CSS = `
.chart { width: 100%; max-width: 960px; height: auto; display: block; }
.chart text { font: 11px system-ui, sans-serif; fill: var(--muted); }
.chart .grid { stroke: var(--line); stroke-width: 1; }
.chart .axis { stroke: #9aa4af; stroke-width: 1; }
.chart .change { stroke: #6a3fb5; stroke-width: 1.5; stroke-dasharray: 4 3; }
.chart text.change-label { fill: #6a3fb5; font-weight: 700; }
.chart .threshold { stroke-width: 2; stroke-dasharray: 6 3; }
.chart .threshold.block { stroke: var(--block); } .chart .threshold.flag { stroke: var(--flag); }
.chart text.threshold-label { font-weight: 600; }
.chart a:hover rect { opacity: 0.8; }
.s-pass { fill: var(--pass); } .s-flag { fill: var(--flag); } .s-block { fill: var(--block); }
.s-shadow-block { fill: url(#shadow-hatch); stroke: var(--block); stroke-width: 1; }
.s-scores { fill: #5d7fb9; } .s-yes { fill: var(--pass); } .s-no { fill: var(--block); }
.line { fill: none; stroke-width: 2; } .line.p50 { stroke: var(--accent); } .line.p95 { stroke: #c0561f; }
.line.cache { stroke: var(--pass); }
.key { display: inline-flex; align-items: center; gap: 4px; margin-right: 14px; font-size: 12px; color: var(--muted); }
.key i { display: inline-block; width: 12px; height: 12px; border-radius: 2px; }
.key i.s-pass { background: var(--pass); } .key i.s-flag { background: var(--flag); } .key i.s-block { background: var(--block); }
.key i.s-shadow-block { background: repeating-linear-gradient(45deg, var(--block) 0 2px, #fff 2px 5px); border: 1px solid var(--block); }
.key i.s-yes { background: var(--pass); } .key i.s-no { background: var(--block); } .key i.s-scores { background: #5d7fb9; }
.key i.p50 { background: var(--accent); } .key i.p95 { background: #c0561f; } .key i.cache { background: var(--pass); }
details.numbers { margin-top: 8px; } details.numbers summary { cursor: pointer; color: var(--accent); }
details.numbers table { margin-top: 6px; font-size: 13px; }
ol.changes { margin: 6px 0 0; padding-left: 22px; } ol.changes li { margin-bottom: 2px; }
.grid-2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 16px; }
`

/** Reason series get colours in this order. */
const PALETTE = [
  '#7a5195',
  '#ef5675',
  '#ffa600',
  '#003f5c',
  '#58508d',
  '#bc5090',
  '#ff764a',
  '#2f4b7c',
]
export const paletteColor = (index: number) => PALETTE[index % PALETTE.length]!

export const WIDTH = 960
const LEFT = 60
const RIGHT = 16
const TOP = 14
const BOTTOM = 30

/** A round upper bound for an axis: 1, 2 or 5 times a power of ten. */
export function niceMax(value: number): number {
  if (!(value > 0)) return 1
  const power = 10 ** Math.floor(Math.log10(value))
  for (const factor of [1, 2, 5, 10]) if (value <= factor * power) return factor * power
  return 10 * power
}

/** A count as people read it: 1234 → "1.2k", 3600000 → "3.6M". */
export function compact(value: number): string {
  if (value >= 1e9) return `${+(value / 1e9).toFixed(1)}G`
  if (value >= 1e6) return `${+(value / 1e6).toFixed(1)}M`
  if (value >= 1e3) return `${+(value / 1e3).toFixed(1)}k`
  return String(Math.round(value * 100) / 100)
}

/** A slot's start as the axis labels it: the hour for hourly slots, else the day. */
export function slotLabel(axis: TimeAxis, slot: number): string {
  const iso = new Date(axis.start + slot * axis.step).toISOString()
  if (axis.step >= 86_400_000) return iso.slice(5, 10)
  if (axis.step > 3_600_000) return `${iso.slice(5, 10)} ${iso.slice(11, 13)}h`
  return `${iso.slice(11, 16)}`
}

/** The changes as markers: one line per hour, labelled with the numbers of its changes ("1, 2"). */
function markers(changes: ReadonlyArray<{ time: number }>): Array<{ time: number; label: string }> {
  const byTime = new Map<number, number[]>()
  changes.forEach((change, index) => {
    byTime.set(change.time, [...(byTime.get(change.time) ?? []), index + 1])
  })
  return [...byTime].map(([time, numbers]) => ({ time, label: numbers.join(', ') }))
}

/** The frame of a time chart: grid, y labels, x labels, and the changes as dashed lines. */
const TimeFrame: FC<{
  axis: TimeAxis
  height: number
  max: number
  format: (value: number) => string
  changes: ReadonlyArray<{ time: number }>
  children?: Child
}> = ({ axis, height, max, format, changes, children }) => {
  const plotWidth = WIDTH - LEFT - RIGHT
  const bottom = height - BOTTOM
  const every = Math.ceil(axis.slots / 8)
  const xOf = (time: number) => LEFT + ((time - axis.start) / (axis.end - axis.start)) * plotWidth
  return (
    <>
      {[0, 0.5, 1].map((share) => {
        const y = bottom - share * (bottom - TOP)
        return (
          <>
            <line class="grid" x1={LEFT} x2={WIDTH - RIGHT} y1={y} y2={y} />
            <text x={LEFT - 6} y={y + 4} text-anchor="end">
              {format(max * share)}
            </text>
          </>
        )
      })}
      {children}
      <line class="axis" x1={LEFT} x2={WIDTH - RIGHT} y1={bottom} y2={bottom} />
      {Array.from({ length: axis.slots }, (_, slot) => slot)
        .filter((slot) => slot % every === 0)
        .map((slot) => (
          <text
            x={LEFT + (slot + 0.5) * (plotWidth / axis.slots)}
            y={bottom + 16}
            text-anchor="middle"
          >
            {slotLabel(axis, slot)}
          </text>
        ))}
      {markers(changes).map(({ time, label }) => (
        <>
          <line class="change" x1={xOf(time)} x2={xOf(time)} y1={TOP} y2={bottom} />
          <text class="change-label" x={xOf(time) + 3} y={TOP + 10}>
            {label}
          </text>
        </>
      ))}
    </>
  )
}

export interface BarSeries {
  kind: string
  name: string
  values: number[]
  color?: string
}

/** Bars stacked per slot, each a link (`link(slot, series)`) when given. */
export const StackedBars: FC<{
  label: string
  axis: TimeAxis
  series: BarSeries[]
  changes: ReadonlyArray<{ time: number }>
  link?: (slot: number, series: BarSeries) => string
  height?: number
}> = ({ label, axis, series, changes, link, height = 220 }) => {
  const totals = Array.from({ length: axis.slots }, (_, slot) =>
    series.reduce((sum, one) => sum + (one.values[slot] ?? 0), 0),
  )
  const max = niceMax(Math.max(0, ...totals))
  const bottom = height - BOTTOM
  const slotWidth = (WIDTH - LEFT - RIGHT) / axis.slots
  const yOf = (value: number) => (value / max) * (bottom - TOP)
  return (
    <svg class="chart" viewBox={`0 0 ${WIDTH} ${height}`} role="img" aria-label={label}>
      <title>{label}</title>
      <defs>
        <pattern
          id="shadow-hatch"
          width="6"
          height="6"
          patternUnits="userSpaceOnUse"
          patternTransform="rotate(45)"
        >
          <rect width="6" height="6" fill="#fff" />
          <rect width="2.5" height="6" fill="#b8422e" />
        </pattern>
      </defs>
      <TimeFrame axis={axis} height={height} max={max} format={compact} changes={changes}>
        {totals.map((_, slot) => {
          let y = bottom
          return series.map((one) => {
            const value = one.values[slot] ?? 0
            if (value <= 0) return null
            const barHeight = yOf(value)
            y -= barHeight
            const rect = (
              <rect
                class={`s-${one.kind}`}
                style={one.color ? `fill: ${one.color}` : undefined}
                x={LEFT + slot * slotWidth + 1}
                y={y}
                width={Math.max(1, slotWidth - 2)}
                height={barHeight}
              >
                <title>{`${slotLabel(axis, slot)} · ${one.name}: ${value}`}</title>
              </rect>
            )
            return link ? <a href={link(slot, one)}>{rect}</a> : rect
          })
        })}
      </TimeFrame>
    </svg>
  )
}

export interface LineSeries {
  kind: string
  name: string
  values: Array<number | undefined>
}

/** Lines over the time axis; a slot without a value breaks the line. */
export const Lines: FC<{
  label: string
  axis: TimeAxis
  series: LineSeries[]
  changes: ReadonlyArray<{ time: number }>
  format: (value: number) => string
  max?: number
  height?: number
}> = ({ label, axis, series, changes, format, max, height = 200 }) => {
  const top = max ?? niceMax(Math.max(0, ...series.flatMap((one) => one.values.map((v) => v ?? 0))))
  const bottom = height - BOTTOM
  const slotWidth = (WIDTH - LEFT - RIGHT) / axis.slots
  const point = (slot: number, value: number) =>
    `${(LEFT + (slot + 0.5) * slotWidth).toFixed(1)} ${(bottom - (value / top) * (bottom - TOP)).toFixed(1)}`
  return (
    <svg class="chart" viewBox={`0 0 ${WIDTH} ${height}`} role="img" aria-label={label}>
      <title>{label}</title>
      <TimeFrame axis={axis} height={height} max={top} format={format} changes={changes}>
        {series.map((one) => {
          let path = ''
          let open = false
          one.values.forEach((value, slot) => {
            if (value === undefined) {
              open = false
              return
            }
            path += `${open ? 'L' : 'M'}${point(slot, value)} `
            open = true
          })
          return (
            <>
              <path class={`line ${one.kind}`} d={path.trim()} />
              {one.values.map((value, slot) =>
                value === undefined ? null : (
                  <circle
                    class={`line ${one.kind}`}
                    r="2.5"
                    cx={LEFT + (slot + 0.5) * slotWidth}
                    cy={bottom - (value / top) * (bottom - TOP)}
                  >
                    <title>{`${slotLabel(axis, slot)} · ${one.name}: ${format(value)}`}</title>
                  </circle>
                ),
              )}
            </>
          )
        })}
      </TimeFrame>
    </svg>
  )
}

/** Bars over the score axis [0, 1], with threshold lines; several series side by side. */
export const ScoreBars: FC<{
  label: string
  series: BarSeries[]
  thresholds: ReadonlyArray<{ blockBelow: number; flagBelow: number }>
  link?: (bucket: number) => string
  height?: number
}> = ({ label, series, thresholds, link, height = 200 }) => {
  const buckets = series[0]?.values.length ?? 0
  const max = niceMax(Math.max(0, ...series.flatMap((one) => one.values)))
  const bottom = height - BOTTOM
  const plotWidth = WIDTH - LEFT - RIGHT
  const bucketWidth = plotWidth / Math.max(1, buckets)
  const barWidth = Math.max(1, (bucketWidth - 2) / Math.max(1, series.length))
  const xOf = (score: number) => LEFT + score * plotWidth
  return (
    <svg class="chart" viewBox={`0 0 ${WIDTH} ${height}`} role="img" aria-label={label}>
      <title>{label}</title>
      {[0, 0.5, 1].map((share) => {
        const y = bottom - share * (bottom - TOP)
        return (
          <>
            <line class="grid" x1={LEFT} x2={WIDTH - RIGHT} y1={y} y2={y} />
            <text x={LEFT - 6} y={y + 4} text-anchor="end">
              {compact(max * share)}
            </text>
          </>
        )
      })}
      {series.map((one, index) =>
        one.values.map((value, bucket) => {
          if (value <= 0) return null
          const barHeight = (value / max) * (bottom - TOP)
          const rect = (
            <rect
              class={`s-${one.kind}`}
              x={LEFT + bucket * bucketWidth + 1 + index * barWidth}
              y={bottom - barHeight}
              width={barWidth}
              height={barHeight}
            >
              <title>{`${(bucket / buckets).toFixed(2)}–${((bucket + 1) / buckets).toFixed(2)} · ${one.name}: ${value}`}</title>
            </rect>
          )
          return link ? <a href={link(bucket)}>{rect}</a> : rect
        }),
      )}
      <line class="axis" x1={LEFT} x2={WIDTH - RIGHT} y1={bottom} y2={bottom} />
      {[0, 0.2, 0.4, 0.6, 0.8, 1].map((score) => (
        <text x={xOf(score)} y={bottom + 16} text-anchor="middle">
          {score.toFixed(1)}
        </text>
      ))}
      {thresholds.flatMap((limits) =>
        (
          [
            ['block', limits.blockBelow],
            ['flag', limits.flagBelow],
          ] as const
        ).map(([kind, value]) => (
          <>
            <line
              class={`threshold ${kind}`}
              x1={xOf(value)}
              x2={xOf(value)}
              y1={TOP}
              y2={bottom}
            />
            <text class="threshold-label" x={xOf(value) + 4} y={TOP + 10}>
              {`${kind} below ${value}`}
            </text>
          </>
        )),
      )}
    </svg>
  )
}

/** The colour key of a chart. */
export const Key: FC<{ items: ReadonlyArray<{ kind: string; name: string; color?: string }> }> = ({
  items,
}) => (
  <p>
    {items.map((item) => (
      <span class="key">
        <i
          class={`s-${item.kind} ${item.kind}`}
          style={item.color ? `background: ${item.color}` : undefined}
        />
        {item.name}
      </span>
    ))}
  </p>
)
