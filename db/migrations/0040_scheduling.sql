-- Scheduling a heterogeneous fleet (issue 13): what a pending job needs from a worker,
-- its place in the fair-share order, why it waits, and the batch it belongs to.
-- required_nodes / required_models / model_key / fair_key are filled by the dispatcher
-- ("classified") before a job can be claimed, whatever path created the row.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['video_jobs', 'image_jobs', 'text_jobs', 'audio_jobs'] LOOP
        EXECUTE format($f$
            ALTER TABLE %1$I
                ADD COLUMN required_nodes  text[],
                ADD COLUMN required_models text[],
                ADD COLUMN model_key       text,
                ADD COLUMN fair_key        double precision,
                ADD COLUMN blocked_reason  text,
                ADD COLUMN batch_id        uuid$f$, t);
        -- the claim order: priority, then the fair-share virtual time, then age
        EXECUTE format('CREATE INDEX %1$s_fair ON %1$I (priority DESC, fair_key, created_at, id)
                        WHERE status = ''pending'' AND deleted_at IS NULL', t);
        -- jobs still to classify
        EXECUTE format('CREATE INDEX %1$s_unclassified ON %1$I (created_at, id)
                        WHERE status = ''pending'' AND fair_key IS NULL', t);
        EXECUTE format('CREATE INDEX %1$s_batch ON %1$I (batch_id, created_at DESC, id DESC)
                        WHERE batch_id IS NOT NULL AND deleted_at IS NULL', t);
    END LOOP;
END;
$$;

-- Fair share: each user's virtual time. A job of user u gets
-- fair_key = max(now's virtual time, u's vtime) + 1, and u's vtime moves to it, so the
-- claim order (fair_key ascending at one priority) takes users round-robin.
CREATE TABLE fair_share (
    user_key   text PRIMARY KEY,
    vtime      double precision NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Workers an admin drains: shared by every replica (each reads it while dispatching).
CREATE TABLE worker_drains (
    url        text PRIMARY KEY CHECK (url <> ''),
    draining   boolean NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
