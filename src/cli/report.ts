import { LABEL_WORDS } from '../review/checks'
import { granularity, type CalibrationReport } from './calibrate'
import { settingPrefix, type CombinedReport } from './combined'
import { precisionCoverageCurve, reliabilityBins, rocCurve } from './metrics'
import { formatProductionLabels } from './production'

/**
 * The calibration report as one self-contained HTML file: inline CSS and SVG, no script, and a
 * Content-Security-Policy that forbids every request, so it opens offline and leaks nothing.
 */

const escape = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`)
const percent = (value: number) => (Number.isNaN(value) ? '–' : `${(value * 100).toFixed(1)}%`)
const fixed = (value: number) => (Number.isNaN(value) ? '–' : value.toFixed(3))

const WIDTH = 420
const HEIGHT = 300
const MARGIN = { top: 16, right: 16, bottom: 44, left: 52 }
const PLOT_W = WIDTH - MARGIN.left - MARGIN.right
const PLOT_H = HEIGHT - MARGIN.top - MARGIN.bottom
const SUFFICIENT = '#2f7d4f'
const INSUFFICIENT = '#b8422e'
const BLOCK = '#b8422e'
const FLAG = '#c8891a'

const x = (value: number) => MARGIN.left + value * PLOT_W
const y = (value: number, max = 1) => MARGIN.top + PLOT_H - (max ? value / max : 0) * PLOT_H

interface ChartParts {
  name: string
  title: string
  xLabel: string
  yLabel: string
  yMax?: number
  body: string
  legend?: Array<[string, string]>
}

function chart({ name, title, xLabel, yLabel, yMax = 1, body, legend = [] }: ChartParts): string {
  const ticks = [0, 0.25, 0.5, 0.75, 1]
  const axes = [
    `<line x1="${x(0)}" y1="${y(0)}" x2="${x(1)}" y2="${y(0)}" class="axis"/>`,
    `<line x1="${x(0)}" y1="${y(0)}" x2="${x(0)}" y2="${y(yMax, yMax)}" class="axis"/>`,
    ...ticks.map(
      (tick) => `<text x="${x(tick)}" y="${y(0) + 16}" text-anchor="middle">${tick}</text>`,
    ),
    ...ticks.map(
      (tick) =>
        `<text x="${x(0) - 6}" y="${y(tick * yMax, yMax) + 4}" text-anchor="end">${yMax === 1 ? tick : Math.round(tick * yMax)}</text>`,
    ),
    `<text x="${x(0.5)}" y="${HEIGHT - 6}" text-anchor="middle" class="label">${escape(xLabel)}</text>`,
    `<text transform="translate(14 ${y(yMax / 2, yMax)}) rotate(-90)" text-anchor="middle" class="label">${escape(yLabel)}</text>`,
  ].join('')
  const legendItems = legend
    .map(
      ([color, text], index) =>
        `<g transform="translate(${x(0) + 8} ${MARGIN.top + 8 + index * 16})"><rect width="10" height="10" fill="${color}"/><text x="14" y="9">${escape(text)}</text></g>`,
    )
    .join('')
  return `<figure data-chart="${name}"><figcaption>${escape(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" role="img" aria-label="${escape(title)}">${axes}${body}${legendItems}</svg></figure>`
}

/** Vertical lines at the recommended thresholds. */
function thresholdLines(report: CalibrationReport, yMax = 1): string {
  if (!report.thresholds) return ''
  // BLOCK_BELOW's label sits left of its line, FLAG_BELOW's right of its, at different heights,
  // so they stay apart however close the thresholds are.
  const line = (
    value: number,
    color: string,
    label: string,
    side: 'left' | 'right',
    height: number,
  ) =>
    `<line x1="${x(value)}" y1="${y(0, yMax)}" x2="${x(value)}" y2="${y(yMax, yMax)}" stroke="${color}" stroke-dasharray="5 3" stroke-width="2" data-threshold="${label}"/>` +
    `<text x="${x(value) + (side === 'left' ? -4 : 4)}" y="${MARGIN.top + PLOT_H * height}" text-anchor="${side === 'left' ? 'end' : 'start'}" fill="${color}" class="small">${label} ${value}</text>`
  const prefix = settingPrefix(report.loaded.check)
  return (
    line(report.thresholds.blockBelow, BLOCK, `${prefix}BLOCK_BELOW`, 'left', 0.3) +
    line(report.thresholds.flagBelow, FLAG, `${prefix}FLAG_BELOW`, 'right', 0.45)
  )
}

function histogram(report: CalibrationReport): string {
  const bins = 20
  const counts = (sufficient: boolean) => {
    const result = new Array<number>(bins).fill(0)
    for (const example of report.loaded.examples)
      if (example.sufficient === sufficient)
        result[Math.min(bins - 1, Math.floor(example.score * bins))]!++
    return result
  }
  const yes = counts(true)
  const no = counts(false)
  const max = Math.max(1, ...yes, ...no)
  const barWidth = PLOT_W / bins / 2
  const bars = (values: number[], color: string, offset: number) =>
    values
      .map((count, bin) =>
        count
          ? `<rect x="${x(bin / bins) + offset}" y="${y(count, max)}" width="${barWidth - 1}" height="${y(0, max) - y(count, max)}" fill="${color}"/>`
          : '',
      )
      .join('')
  return chart({
    name: 'histogram',
    title: 'Scores by label',
    xLabel: 'score: P(True)',
    yLabel: 'examples',
    yMax: max,
    body: bars(no, INSUFFICIENT, 0) + bars(yes, SUFFICIENT, barWidth) + thresholdLines(report, max),
    legend: [
      [SUFFICIENT, LABEL_WORDS[report.loaded.check].yes],
      [INSUFFICIENT, LABEL_WORDS[report.loaded.check].no],
    ],
  })
}

function roc(report: CalibrationReport): string {
  const points = rocCurve(report.loaded.examples)
  const path = points
    .map(
      (point, index) => `${index ? 'L' : 'M'}${x(point.fpr).toFixed(1)},${y(point.tpr).toFixed(1)}`,
    )
    .join('')
  const prefix = settingPrefix(report.loaded.check)
  const marks = report.thresholds
    ? (
        [
          [report.thresholds.blockBelow, BLOCK, `${prefix}BLOCK_BELOW`],
          [report.thresholds.flagBelow, FLAG, `${prefix}FLAG_BELOW`],
        ] as const
      )
        .map(([threshold, color, label]) => {
          const point = points.find((candidate) => candidate.threshold === threshold)
          return point
            ? `<circle cx="${x(point.fpr)}" cy="${y(point.tpr)}" r="5" fill="${color}" data-threshold="${label}"/><text x="${x(point.fpr) + 7}" y="${y(point.tpr) + 12}" fill="${color}" class="small">${label}</text>`
            : ''
        })
        .join('')
    : ''
  return chart({
    name: 'roc',
    title: `ROC curve (AUROC ${fixed(report.auroc)})`,
    xLabel: `${LABEL_WORDS[report.loaded.check].no} passed (false positive rate)`,
    yLabel: `${LABEL_WORDS[report.loaded.check].yes} passed (true positive rate)`,
    body: `<line x1="${x(0)}" y1="${y(0)}" x2="${x(1)}" y2="${y(1)}" class="diagonal"/><path d="${path}" fill="none" stroke="#2b5ea7" stroke-width="2"/>${marks}`,
  })
}

function precisionCoverage(report: CalibrationReport): string {
  const points = precisionCoverageCurve(report.loaded.examples)
  const path = points
    .map(
      (point, index) =>
        `${index ? 'L' : 'M'}${x(point.coverage).toFixed(1)},${y(point.precision).toFixed(1)}`,
    )
    .join('')
  const target = `<line x1="${x(0)}" y1="${y(report.targets.passPrecision)}" x2="${x(1)}" y2="${y(report.targets.passPrecision)}" class="target"/><text x="${x(1) - 4}" y="${y(report.targets.passPrecision) - 4}" text-anchor="end" class="small">target ${percent(report.targets.passPrecision)}</text>`
  const flag =
    report.thresholds && points.find((point) => point.threshold === report.thresholds!.flagBelow)
  const prefix = settingPrefix(report.loaded.check)
  const mark = flag
    ? `<circle cx="${x(flag.coverage)}" cy="${y(flag.precision)}" r="5" fill="${FLAG}" data-threshold="${prefix}FLAG_BELOW"/><text x="${x(flag.coverage) + 7}" y="${y(flag.precision) + 14}" fill="${FLAG}" class="small">${prefix}FLAG_BELOW ${report.thresholds!.flagBelow}</text>`
    : ''
  return chart({
    name: 'precision-coverage',
    title: 'Pass precision against coverage',
    xLabel: 'coverage: share of answers passed',
    yLabel: `passed and ${LABEL_WORDS[report.loaded.check].yes}`,
    body: `${target}<path d="${path}" fill="none" stroke="#2b5ea7" stroke-width="2"/>${mark}`,
  })
}

function reliability(report: CalibrationReport): string {
  const bins = reliabilityBins(report.loaded.examples, report.eceBins)
  const width = PLOT_W / bins.length
  const bars = bins
    .map((bin) =>
      bin.count
        ? `<rect x="${x(bin.from) + 1}" y="${y(bin.sufficientRate)}" width="${width - 2}" height="${y(0) - y(bin.sufficientRate)}" fill="#7fa7d9"><title>${bin.count} examples, score ${fixed(bin.meanScore)}, ${LABEL_WORDS[report.loaded.check].yes} ${percent(bin.sufficientRate)}</title></rect><circle cx="${x(bin.meanScore)}" cy="${y(bin.sufficientRate)}" r="3" fill="#1d3f70"/>`
        : '',
    )
    .join('')
  return chart({
    name: 'reliability',
    title: `Reliability (ECE ${fixed(report.ece)}, ${report.eceBins} equal bins)`,
    xLabel: 'score: P(True)',
    yLabel: `share ${LABEL_WORDS[report.loaded.check].yes}`,
    body: `<line x1="${x(0)}" y1="${y(0)}" x2="${x(1)}" y2="${y(1)}" class="diagonal"/>${bars}${thresholdLines(report)}`,
  })
}

/** One check's section: its figures, recommendation, charts and table. */
function checkSection(report: CalibrationReport, several: boolean): string {
  const { loaded, counts, recommendation } = report
  const { yes, no } = LABEL_WORDS[loaded.check]
  const steps = granularity(loaded)
  const others = Object.entries(loaded.otherEstimators)
    .map(([name, count]) => `${name} ${count}`)
    .join(', ')
  const flag = recommendation.flagBelow
  const block = recommendation.blockBelow
  // The calibrated check's settings: BLOCK_BELOW / FLAG_BELOW, or GROUNDEDNESS_…
  const prefix = settingPrefix(loaded.check)
  const recommended = report.thresholds
    ? `<pre class="snippet">[vars]\n${prefix}BLOCK_BELOW = ${report.thresholds.blockBelow}\n${prefix}FLAG_BELOW = ${report.thresholds.flagBelow}</pre>`
    : `<p class="warning">The targets cannot both be met on this data. ${!flag.met ? `Best pass precision: ${flag.best ? `${percent(flag.best.abovePrecision)} at ${flag.best.threshold}` : 'none'}.` : ''} ${!block.met ? `Best block precision: ${block.best ? `${percent(block.best.belowPrecision)} at ${block.best.threshold}` : 'none'}.` : ''}</p>`
  const rows = report.at
    .map(
      (stats) =>
        `<tr><td>${stats.threshold}</td><td>${stats.above} (${percent(stats.coverage)})</td><td>${percent(stats.abovePrecision)}</td><td>${percent(stats.sufficientRecall)}</td><td>${stats.below}</td><td>${percent(stats.belowPrecision)}</td><td>${percent(stats.insufficientRecall)}</td></tr>`,
    )
    .join('')
  return `<section data-check="${loaded.check}">
${several ? `<h2>Check: ${loaded.check}</h2>` : ''}
<p class="meta">Judge model: <strong data-field="model">${escape(loaded.models.join(', ') || 'unknown')}</strong> · prompt version: <strong data-field="prompt-version">${escape(loaded.promptVersions.join(', ') || 'unknown')}</strong> · estimator: <strong data-field="estimator">${escape(loaded.estimator)}</strong> · ${counts.total} labeled examples (${counts.sufficient} ${yes}, ${counts.insufficient} ${no}) from ${loaded.source === 'eval' ? 'rag-guard eval' : 'the decision log'}</p>
${steps ? `<p class="warning" data-field="granularity">Sampling: ${escape(steps)}.</p>` : ''}
${others ? `<p class="meta" data-field="other-estimators">Left out, scores of another estimator (not on this scale): ${escape(others)}.</p>` : ''}
${loaded.production ? `<p class="meta" data-field="production">Check: <strong>${loaded.check}</strong> · production labels: ${escape(formatProductionLabels(loaded.production))}</p>${report.tooFew.map((warning) => `<p class="warning" data-field="too-few">${escape(warning)}</p>`).join('')}` : ''}
${report.standIn ? `<p class="standin" data-field="stand-in">These scores come from the <strong>stand-in model</strong>, which is not a language model: they show the workflow, and say nothing about how well a real judge ${loaded.check === 'sufficiency' ? 'detects insufficient context' : 'detects hallucinated answers'}.</p>` : ''}
<p class="metrics"><span>AUROC <strong>${fixed(report.auroc)}</strong></span><span>AUPRC (${no}) <strong>${fixed(report.auprc)}</strong></span><span>Brier <strong>${fixed(report.brier)}</strong></span><span>ECE <strong>${fixed(report.ece)}</strong></span></p>
<h3>Recommended thresholds</h3>
<p>Targets: of the answers passed, at least ${percent(report.targets.passPrecision)} ${loaded.check === 'sufficiency' ? 'have sufficient context' : `are ${yes}`}; of those blocked, at least ${percent(report.targets.blockPrecision)} ${loaded.check === 'sufficiency' ? 'truly lack it' : `are ${no}`}.</p>
${recommended}
<div class="charts">
${histogram(report)}
${roc(report)}
${precisionCoverage(report)}
${reliability(report)}
</div>
<h3>At fixed thresholds</h3>
<table><tr><th>threshold</th><th>passed (≥)</th><th>pass precision</th><th>${yes} recall</th><th>blocked (&lt;)</th><th>block precision</th><th>${no} recall</th></tr>${rows}</table>
</section>`
}

/** The combined verdict's section: the rows worth reading, the grid, the recommended pair. */
function combinedSection(combined: CombinedReport): string {
  const share = (part: number, whole: number, value: number) =>
    `${part}/${whole} (${percent(value)})`
  const rows = combined.rows
    .map(
      ({ name, stats }) =>
        `<tr><td>${stats.pair.sufficiency}</td><td>${stats.pair.groundedness}</td><td>${share(stats.stopped, stats.bad, stats.stoppedShare)}</td><td>${share(stats.lost, stats.good, stats.lostShare)}</td><td>${percent(stats.precision)}</td><td>${escape(name)}</td></tr>`,
    )
    .join('')
  const { values, cells } = combined.grid
  const grid = cells
    .map(
      (row, index) =>
        `<tr><th>${values[index]}</th>${row.map((stats) => `<td>${percent(stats.stoppedShare)} / ${percent(stats.lostShare)}</td>`).join('')}</tr>`,
    )
    .join('')
  const recommendation = combined.recommendation
  const minCount = combined.targets.minCount ?? 10
  const verdict = recommendation.met
    ? `<p>Recommended: <strong>BLOCK_BELOW = ${recommendation.stats.pair.sufficiency}, GROUNDEDNESS_BLOCK_BELOW = ${recommendation.stats.pair.groundedness}</strong>: the largest share of bad answers stopped minus share of good answers lost, with at least ${percent(combined.targets.blockPrecision)} of the blocked bad (${minCount}+ blocked).</p><pre class="snippet" data-field="combined-snippet">${escape(combined.snippet!.join('\n'))}</pre>`
    : `<p class="warning">No pair blocks ${minCount}+ answers with ${percent(combined.targets.blockPrecision)} of them bad.${recommendation.best ? ` Best reachable: ${percent(recommendation.best.precision)} at BLOCK_BELOW = ${recommendation.best.pair.sufficiency}, GROUNDEDNESS_BLOCK_BELOW = ${recommendation.best.pair.groundedness}.` : ''}</p>`
  return `<section data-check="combined">
<h2>Combined verdict: both checks, the most severe wins</h2>
<p class="meta">${combined.counts.total} answers with both scores (${combined.counts.bad} bad, ${combined.counts.good} good)${combined.counts.unlabeled ? `; left out, no label: ${combined.counts.unlabeled}` : ''}. ${escape(combined.definition)}. Stopped: bad answers blocked by either check; lost: good answers blocked.</p>
<table data-field="combined-rows"><tr><th>BLOCK_BELOW</th><th>GROUNDEDNESS_BLOCK_BELOW</th><th>stopped</th><th>lost</th><th>block precision</th><th></th></tr>${rows}</table>
${verdict}
<h3>Stopped / lost: BLOCK_BELOW down, GROUNDEDNESS_BLOCK_BELOW across</h3>
<table data-field="combined-grid"><tr><th></th>${values.map((value) => `<th>${value}</th>`).join('')}</tr>${grid}</table>
</section>`
}

/** One check's report as a page (see {@link renderReports}). */
export function renderReport(report: CalibrationReport, generatedAt = new Date()): string {
  return renderReports([report], undefined, generatedAt)
}

/** Every check's section, and the combined verdict's when there is one, as one page. */
export function renderReports(
  reports: readonly CalibrationReport[],
  combined?: CombinedReport,
  generatedAt = new Date(),
): string {
  const several = reports.length > 1 || combined !== undefined
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>RAG Guard calibration report</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 900px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; }
.meta { color: #555; }
.warning, .standin { background: #fff4e0; border-left: 4px solid ${FLAG}; padding: 8px 12px; }
.metrics span { display: inline-block; margin-right: 18px; }
.charts { display: grid; grid-template-columns: repeat(2, ${WIDTH}px); gap: 16px; }
figure { margin: 0; } figcaption { font-weight: 600; margin-bottom: 4px; }
svg text { font-size: 11px; fill: #333; } svg .label { font-size: 12px; } svg .small { font-size: 10px; }
.axis { stroke: #333; } .diagonal { stroke: #aaa; stroke-dasharray: 4 4; } .target { stroke: #999; stroke-dasharray: 2 3; }
table { border-collapse: collapse; margin-top: 8px; } td, th { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: right; }
.snippet { background: #f4f4f4; padding: 8px 12px; display: inline-block; }
</style>
</head>
<body>
<h1>RAG Guard calibration report</h1>
<p class="meta">${several ? `Checks: ${reports.map((report) => report.loaded.check).join(', ')}${combined ? ' and their combined verdict' : ''} · ` : ''}generated ${generatedAt.toISOString()}</p>
${reports.map((report) => checkSection(report, several)).join('\n')}
${combined ? combinedSection(combined) : ''}
</body>
</html>
`
}
