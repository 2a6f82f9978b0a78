-- Retention and quotas: a job past its retention loses its stored files and becomes
-- 'expired' (the row and its costs stay); pinned jobs are kept. retention_days is the
-- template's own retention taken at submit (NULL: RETENTION_DAYS, read by the sweeper).
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['video_jobs', 'image_jobs', 'text_jobs', 'audio_jobs'] LOOP
        EXECUTE format('ALTER TABLE %1$I DROP CONSTRAINT %1$s_status_check', t);
        EXECUTE format($f$
            ALTER TABLE %1$I
                ADD CONSTRAINT %1$s_status_check CHECK (status IN (
                    'pending', 'processing', 'completed', 'failed', 'cancelled', 'expired')),
                ADD COLUMN pinned         boolean NOT NULL DEFAULT false,
                ADD COLUMN retention_days integer CHECK (retention_days > 0),
                ADD COLUMN expired_at     timestamptz$f$, t);
        -- the sweeper's scan: finished, unpinned jobs by age
        EXECUTE format('CREATE INDEX %1$s_retention ON %1$I (completed_at)
                        WHERE status IN (''completed'', ''failed'', ''cancelled'')
                          AND NOT pinned', t);
    END LOOP;
END;
$$;

-- A per-user storage quota set by an admin (NULL: STORAGE_QUOTA_BYTES).
ALTER TABLE users ADD COLUMN storage_quota_bytes bigint CHECK (storage_quota_bytes >= 0);

-- Uploaded input files, so that they count against their owner's quota.
CREATE TABLE user_uploads (
    key        text PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_user_uploads_user ON user_uploads (user_id);
