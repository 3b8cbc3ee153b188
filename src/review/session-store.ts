/**
 * Review sessions in the decision store (D1, `sessions` of migrations/0002_sessions.sql): a
 * session is open from sign-in until it is ended or expires. The review page reads one row by
 * its primary key on each request that carries a session; nothing else reads this table, so
 * guarded traffic never pays for it.
 */

/** Keeps a new session, open until `expires`. */
export async function openSession(
  db: D1Database,
  session: { id: string; operator: string; now: number; expires: number },
): Promise<void> {
  await db
    .prepare('INSERT INTO sessions (id, operator, created_at, expires_at) VALUES (?, ?, ?, ?)')
    .bind(session.id, session.operator, session.now, session.expires)
    .run()
}

/** Whether the session `id` of `operator` is open: kept, not ended, not expired. */
export async function sessionIsOpen(
  db: D1Database,
  id: string,
  operator: string,
  now: number,
): Promise<boolean> {
  const row = await db
    .prepare(
      'SELECT 1 AS open FROM sessions WHERE id = ? AND operator = ? AND ended_at IS NULL AND expires_at > ?',
    )
    .bind(id, operator, now)
    .first<{ open: number }>()
  return row !== null
}

/** Which sessions an end applies to: one, every one of an operator, or all. */
export type SessionScope = { session: string } | { operator: string } | 'all'

/** Ends the sessions of `scope` that are still open. */
export async function endSessions(db: D1Database, scope: SessionScope, now: number): Promise<void> {
  const statement =
    scope === 'all'
      ? db.prepare('UPDATE sessions SET ended_at = ?1 WHERE ended_at IS NULL').bind(now)
      : 'session' in scope
        ? db
            .prepare('UPDATE sessions SET ended_at = ?1 WHERE id = ?2 AND ended_at IS NULL')
            .bind(now, scope.session)
        : db
            .prepare('UPDATE sessions SET ended_at = ?1 WHERE operator = ?2 AND ended_at IS NULL')
            .bind(now, scope.operator)
  await statement.run()
}
