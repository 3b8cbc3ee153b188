/**
 * The retention purge, run by the Worker's `scheduled` handler (the cron trigger in
 * wrangler.toml): decisions older than `STORE_RETENTION_DAYS` lose their content, and those
 * nobody labeled are deleted. A labeled decision keeps its scores, hashes and labels — what
 * calibration needs, and no text of the traffic — so that labels outlive the retention period.
 *
 * The overview's hourly rollups go the same way (deleted whole: they hold no text).
 *
 * Each statement touches at most {@link PURGE_BATCH} rows, and one run makes at most
 * {@link PURGE_MAX_BATCHES} of each kind, so a run stays short however far behind it is; the next
 * run continues.
 */
import { purgeRollups } from './rollups'
import type { StoreConfig } from './settings'

export const PURGE_BATCH = 1000
export const PURGE_MAX_BATCHES = 50
const DAY_MS = 86_400_000

export interface PurgeResult {
  /** Decisions deleted (old, not labeled). */
  deleted: number
  /** Labeled decisions whose question, documents and answer were removed. */
  contentPurged: number
  /** Whether nothing older than the retention period is left to purge. */
  complete: boolean
  /** Hourly rollup rows deleted (the overview's, kept as long as decisions). */
  rollupsDeleted?: number
}

const CLEAR_CONTENT = `UPDATE decisions SET question = NULL, documents = NULL, answer = NULL, content = 'purged'
  WHERE id IN (SELECT id FROM decisions WHERE time < ?1 AND content = 'stored' LIMIT ?2)`

const DELETE_UNLABELED = `DELETE FROM decisions WHERE id IN (
  SELECT d.id FROM decisions d WHERE d.time < ?1
    AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.decision_id = d.id)
  LIMIT ?2)`

/** Purges what is older than `retentionDays` before `now` (milliseconds since the epoch). */
export async function purgeDecisions(
  db: D1Database,
  retentionDays: number,
  now: number,
): Promise<PurgeResult> {
  const cutoff = now - retentionDays * DAY_MS
  /** Runs `sql` in batches until it touches fewer rows than a batch, or the run's budget is spent. */
  const drain = async (sql: string): Promise<{ changed: number; complete: boolean }> => {
    let changed = 0
    for (let batch = 0; batch < PURGE_MAX_BATCHES; batch++) {
      const result = await db.prepare(sql).bind(cutoff, PURGE_BATCH).run()
      const changes = result.meta.changes ?? 0
      changed += changes
      if (changes < PURGE_BATCH) return { changed, complete: true }
    }
    return { changed, complete: false }
  }
  // What nobody labeled goes whole; what is left past the cutoff (labeled) keeps no text.
  const deleted = await drain(DELETE_UNLABELED)
  const cleared = await drain(CLEAR_CONTENT)
  return {
    deleted: deleted.changed,
    contentPurged: cleared.changed,
    complete: cleared.complete && deleted.complete,
  }
}

/**
 * Deletes what only bounds need while it is current: sessions past their end, and the counts of
 * content per caller and hour older than a day (the cap reads only the current hour's).
 */
export async function purgeBookkeeping(db: D1Database, now: number): Promise<void> {
  await db.batch([
    db.prepare('DELETE FROM sessions WHERE expires_at < ?').bind(now),
    db.prepare('DELETE FROM content_usage WHERE hour < ?').bind(Math.floor(now / 3_600_000) - 24),
  ])
}

/** The scheduled purge of the Worker's store; does nothing without one. Never throws. */
export async function purgeStore(
  store: StoreConfig | undefined,
  now: number,
): Promise<PurgeResult | undefined> {
  if (!store) return undefined
  try {
    const result: PurgeResult = await purgeDecisions(store.db, store.retentionDays, now)
    // A store whose rollup tables are missing (0003 not applied) still purges its decisions.
    await purgeBookkeeping(store.db, now)
    result.rollupsDeleted = await purgeRollups(store.db, store.retentionDays, now).catch(
      (error: unknown) => {
        console.error(
          JSON.stringify({
            message: 'rag-guard purge of rollups failed',
            error: String(error).slice(0, 300),
          }),
        )
        return undefined
      },
    )
    console.log(JSON.stringify({ message: 'rag-guard purge', ...result }))
    return result
  } catch (error) {
    console.error(
      JSON.stringify({ message: 'rag-guard purge failed', error: String(error).slice(0, 300) }),
    )
    return undefined
  }
}
