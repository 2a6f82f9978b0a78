-- The four output-type job tables (seed 000 option C). They share every common column,
-- constraint and index, so one loop defines them; type-specific columns follow.
-- Statuses are lowercase text with a CHECK (as seed 002 stores them) rather than a
-- PostgreSQL enum, which cannot gain values inside a transaction on older servers.

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['video_jobs', 'image_jobs', 'text_jobs', 'audio_jobs'] LOOP
        EXECUTE format($f$
            CREATE TABLE %1$I (
                id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                user_id                  uuid REFERENCES users (id) ON DELETE SET NULL,
                workflow_name            text NOT NULL CHECK (workflow_name <> ''),
                status                   text NOT NULL DEFAULT 'pending' CHECK (status IN (
                                             'pending', 'processing', 'completed', 'failed',
                                             'cancelled')),
                progress                 double precision NOT NULL DEFAULT 0
                                             CHECK (progress >= 0 AND progress <= 100),
                parameters               jsonb NOT NULL DEFAULT '{}'::jsonb,
                public                   boolean NOT NULL DEFAULT false,
                session_id               uuid REFERENCES sessions (id) ON DELETE SET NULL,
                comfy_job_id             text,
                comfy_url                text,
                comfyui_output_filename  text,
                comfyui_output_subfolder text,
                comfyui_output_type      text,
                outputs                  jsonb NOT NULL DEFAULT '[]'::jsonb,
                error_message            text,
                model_used               text,
                user_ip                  text,
                idempotency_key          text,
                priority                 integer NOT NULL DEFAULT 0,
                attempts                 integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                claimed_by               text,
                lease_expires_at         timestamptz,
                cost_usd                 numeric(12, 6) CHECK (cost_usd >= 0),
                created_at               timestamptz NOT NULL DEFAULT now(),
                updated_at               timestamptz NOT NULL DEFAULT now(),
                started_at               timestamptz,
                completed_at             timestamptz,
                processing_time_seconds  double precision CHECK (processing_time_seconds >= 0),
                deleted_at               timestamptz,
                legacy_source            text,
                legacy_id                text,
                CHECK ((legacy_source IS NULL) = (legacy_id IS NULL))
            )$f$, t);

        -- Feed indexes, one per scope and filter: keyset scans on (created_at, id) DESC.
        -- MINE
        EXECUTE format('CREATE INDEX %1$s_mine ON %1$I (user_id, created_at DESC, id DESC)
                        WHERE deleted_at IS NULL', t);
        -- PUBLIC (and the public half of ALL for a non-admin)
        EXECUTE format('CREATE INDEX %1$s_public ON %1$I (created_at DESC, id DESC)
                        WHERE deleted_at IS NULL AND public', t);
        -- ALL for an admin
        EXECUTE format('CREATE INDEX %1$s_all ON %1$I (created_at DESC, id DESC)
                        WHERE deleted_at IS NULL', t);
        -- by workflow
        EXECUTE format('CREATE INDEX %1$s_mine_workflow
                        ON %1$I (user_id, workflow_name, created_at DESC, id DESC)
                        WHERE deleted_at IS NULL', t);
        EXECUTE format('CREATE INDEX %1$s_workflow ON %1$I (workflow_name, created_at DESC, id DESC)
                        WHERE deleted_at IS NULL', t);
        -- by status
        EXECUTE format('CREATE INDEX %1$s_mine_status
                        ON %1$I (user_id, status, created_at DESC, id DESC)
                        WHERE deleted_at IS NULL', t);
        EXECUTE format('CREATE INDEX %1$s_status ON %1$I (status, created_at DESC, id DESC)
                        WHERE deleted_at IS NULL', t);
        -- by session (Session.jobs)
        EXECUTE format('CREATE INDEX %1$s_session ON %1$I (session_id, created_at DESC, id DESC)
                        WHERE deleted_at IS NULL AND session_id IS NOT NULL', t);
        -- the dispatch queue: priority, then age
        EXECUTE format('CREATE INDEX %1$s_pending ON %1$I (priority DESC, created_at, id)
                        WHERE status = ''pending'' AND deleted_at IS NULL', t);
        -- leases of jobs in flight, for recovery
        EXECUTE format('CREATE INDEX %1$s_leases ON %1$I (lease_expires_at)
                        WHERE status = ''processing''', t);
        EXECUTE format('CREATE INDEX %1$s_comfy_job_id ON %1$I (comfy_job_id)
                        WHERE comfy_job_id IS NOT NULL', t);
        EXECUTE format('CREATE UNIQUE INDEX %1$s_legacy ON %1$I (legacy_source, legacy_id)
                        WHERE legacy_id IS NOT NULL', t);
        EXECUTE format('CREATE TRIGGER %1$s_updated_at BEFORE UPDATE ON %1$I
                        FOR EACH ROW EXECUTE FUNCTION set_updated_at()', t);
    END LOOP;
END;
$$;

ALTER TABLE video_jobs
    ADD COLUMN input_image_urls  text[] NOT NULL DEFAULT '{}',
    ADD COLUMN input_audio_urls  text[] NOT NULL DEFAULT '{}',
    ADD COLUMN input_video_urls  text[] NOT NULL DEFAULT '{}',
    ADD COLUMN output_video_urls text[] NOT NULL DEFAULT '{}',
    ADD COLUMN width             integer CHECK (width > 0),
    ADD COLUMN height            integer CHECK (height > 0),
    ADD COLUMN fps               integer CHECK (fps > 0),
    ADD COLUMN duration_seconds  double precision CHECK (duration_seconds >= 0);

ALTER TABLE image_jobs
    ADD COLUMN input_image_urls  text[] NOT NULL DEFAULT '{}',
    ADD COLUMN prompt            text,
    ADD COLUMN output_image_urls text[] NOT NULL DEFAULT '{}',
    ADD COLUMN width             integer CHECK (width > 0),
    ADD COLUMN height            integer CHECK (height > 0);

ALTER TABLE text_jobs
    ADD COLUMN input_image_urls text[] NOT NULL DEFAULT '{}',
    ADD COLUMN prompt           text,
    ADD COLUMN output_text      text,
    ADD COLUMN output_urls      text[] NOT NULL DEFAULT '{}';

ALTER TABLE audio_jobs
    ADD COLUMN input_audio_urls  text[] NOT NULL DEFAULT '{}',
    ADD COLUMN output_audio_urls text[] NOT NULL DEFAULT '{}',
    ADD COLUMN duration_seconds  double precision CHECK (duration_seconds >= 0),
    ADD COLUMN sample_rate       integer CHECK (sample_rate > 0);

-- An idempotency key is unique per user across all four tables, so it cannot be a
-- per-table index: the first submit claims the key here, in the job's transaction.
CREATE TABLE job_idempotency (
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key         text NOT NULL CHECK (key <> ''),
    job_id      uuid NOT NULL,
    output_type text NOT NULL CHECK (output_type IN ('video', 'image', 'text', 'audio')),
    request     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
