-- RAG Guard's decision store (GUARD_DB), for the review page and its labels export.
-- Apply with `npx wrangler d1 migrations apply GUARD_DB --remote` (`--local` for wrangler dev).

-- One row per stored decision. Flags and blocks are always stored, passes at STORE_PASS_RATE.
CREATE TABLE decisions (
  -- Assigned by the store (the request id may repeat: a client can choose its x-request-id).
  id TEXT PRIMARY KEY,
  -- When the response went out, in milliseconds since the epoch.
  time INTEGER NOT NULL,
  request_id TEXT NOT NULL,
  route TEXT NOT NULL,
  mode TEXT NOT NULL,
  -- pass | flag | block (in shadow mode, the verdict that would have applied).
  verdict TEXT NOT NULL,
  -- The check that decided: sufficiency | groundedness; NULL when no check was asked.
  check_name TEXT,
  -- The deciding score, and each check's own.
  score REAL,
  sufficiency_score REAL,
  groundedness_score REAL,
  reason TEXT,
  -- The share of decisions like this one that were stored: 1 for flag and block.
  sample_rate REAL NOT NULL,
  question_hash TEXT,
  context_hash TEXT,
  -- stored | not-stored (STORE_CONTENT off) | purged (past STORE_RETENTION_DAYS, kept for its labels).
  content TEXT NOT NULL,
  question TEXT,
  -- The documents the judge saw, as a JSON array of strings.
  documents TEXT,
  answer TEXT,
  -- The decision record as the decision log has it, as JSON, without question or documents.
  record TEXT NOT NULL
);

-- The review list is newest first, paginated by key on (time, id), with optional filters.
CREATE INDEX decisions_time ON decisions (time, id);
CREATE INDEX decisions_verdict_time ON decisions (verdict, time, id);
CREATE INDEX decisions_route_time ON decisions (route, time, id);
CREATE INDEX decisions_check_time ON decisions (check_name, time, id);

-- An operator's labels of one decision: one per check, and a note.
CREATE TABLE reviews (
  decision_id TEXT PRIMARY KEY REFERENCES decisions (id) ON DELETE CASCADE,
  -- 1 sufficient, 0 insufficient, NULL not labeled.
  sufficient INTEGER,
  -- 1 grounded, 0 hallucinated, NULL not labeled.
  grounded INTEGER,
  note TEXT,
  reviewer TEXT NOT NULL,
  reviewed_at INTEGER NOT NULL
);

-- The export reads labels in the order they were given, by key.
CREATE INDEX reviews_time ON reviews (reviewed_at, decision_id);
