/**
 * The labels export: one JSON line per labeled decision, in the format `rag-guard calibrate`
 * reads. A line is the decision record as the decision log has it (scores of every check,
 * hashes, request id, model, prompt versions; never the question, documents or answer) with the
 * store's `id` and the labels: `sufficient` and `grounded` (true / false, each present when that
 * check was labeled). So one file is both a labeled decision log (`rag-guard calibrate
 * labels.jsonl`) and a labels file for a decision log from Workers Logs (`--labels`, joined by
 * `requestId` or by `questionHash` and `contextHash`).
 */
import { LABEL_FIELD } from './checks'
import type { LabeledRow } from './queries'

export function exportLine(row: LabeledRow): string {
  const record = JSON.parse(row.record) as Record<string, unknown>
  return JSON.stringify({
    ...record,
    id: row.decision_id,
    ...(row.sufficient !== null ? { [LABEL_FIELD.sufficiency]: row.sufficient === 1 } : {}),
    ...(row.grounded !== null ? { [LABEL_FIELD.groundedness]: row.grounded === 1 } : {}),
    labeledBy: row.reviewer,
    labeledAt: new Date(row.reviewed_at).toISOString(),
  })
}
