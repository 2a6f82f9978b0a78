-- Rate-limit counters shared by every replica when there is no Redis (issue 11): one
-- row per limit key and fixed window. UNLOGGED: counters are worth nothing after a crash
-- and should cost no WAL. Expired rows are replaced in place by the next hit, and
-- swept now and then by the application.

CREATE UNLOGGED TABLE IF NOT EXISTS rate_counters (
    key        text PRIMARY KEY,
    count      bigint NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_rate_counters_expires_at ON rate_counters (expires_at);
