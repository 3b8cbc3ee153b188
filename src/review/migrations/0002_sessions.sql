-- Review sessions that can be ended, and the content each caller stored per hour (issue 24).
-- Apply with `npx wrangler d1 migrations apply GUARD_DB --remote` (`--local` for wrangler dev).

-- One row per review session signed in with an operator token. The session cookie carries the
-- id and is signed with REVIEW_SECRET: an id read from this table alone opens nothing.
CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  -- The operator as the caller check names them: token:<hash prefix>.
  operator TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  -- When the session ends by itself (12 hours after sign-in), in milliseconds since the epoch.
  expires_at INTEGER NOT NULL,
  -- When it was ended (sign-out, "sign out everywhere", "end every session"); NULL while open.
  ended_at INTEGER
);

-- "Sign out everywhere" ends the open sessions of one operator.
CREATE INDEX sessions_operator ON sessions (operator, ended_at);
-- The scheduled purge deletes sessions past their end.
CREATE INDEX sessions_expires ON sessions (expires_at);

-- The bytes of question, documents and answer (UTF-8) stored per caller per hour: past
-- STORE_CONTENT_HOURLY_BYTES, a caller's decisions are stored without their text (content =
-- 'capped' in decisions).
CREATE TABLE content_usage (
  caller TEXT NOT NULL,
  -- Hours since the epoch.
  hour INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (caller, hour)
);
