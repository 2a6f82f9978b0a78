-- Seed 004's assets, generation_costs and websocket_connections, with its triggers fixed.

CREATE TABLE assets (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id              uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    type                    text NOT NULL CHECK (type IN ('image', 'video_clip', 'final_video', 'audio')),
    source                  text NOT NULL DEFAULT 'comfyui' CHECK (source <> ''),
    status                  text NOT NULL DEFAULT 'generating' CHECK (status IN (
                                'generating', 'completed', 'failed', 'approved', 'rejected')),
    url                     text,
    storage_path            text,
    file_size_bytes         bigint CHECK (file_size_bytes > 0),
    mime_type               varchar(100),
    resolution              varchar(20) CHECK (resolution ~ '^[1-9][0-9]*x[1-9][0-9]*$'),
    duration_seconds        numeric(8, 3) CHECK (duration_seconds >= 0),
    fps                     integer CHECK (fps > 0),
    generation_cost         numeric(12, 6) NOT NULL DEFAULT 0 CHECK (generation_cost >= 0),
    generation_time_seconds numeric(10, 2) CHECK (generation_time_seconds >= 0),
    model_version           varchar(100),
    view_type               varchar(50),
    seed                    bigint,
    guidance_scale          numeric(5, 2),
    source_image_id         uuid REFERENCES assets (id) ON DELETE SET NULL,
    scene_prompt            text,
    camera_movement         varchar(50),
    motion_intensity        numeric(3, 2) CHECK (motion_intensity BETWEEN 0 AND 1),
    generation_prompt       text,
    negative_prompt         text,
    user_selected           boolean NOT NULL DEFAULT false,
    selection_order         integer CHECK (selection_order > 0),
    job_id                  uuid,
    job_output_type         text CHECK (job_output_type IN ('video', 'image', 'text', 'audio')),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    deleted_at              timestamptz,
    metadata                jsonb NOT NULL DEFAULT '{}'::jsonb,
    CHECK ((job_id IS NULL) = (job_output_type IS NULL))
);
CREATE INDEX idx_assets_session ON assets (session_id, type, created_at) WHERE deleted_at IS NULL;
CREATE INDEX idx_assets_mood_board ON assets (session_id, selection_order)
    WHERE user_selected AND deleted_at IS NULL;
CREATE INDEX idx_assets_status ON assets (status);
CREATE INDEX idx_assets_created_at ON assets (created_at DESC);
CREATE INDEX idx_assets_source_image_id ON assets (source_image_id) WHERE source_image_id IS NOT NULL;
CREATE INDEX idx_assets_job ON assets (job_id) WHERE job_id IS NOT NULL;
CREATE TRIGGER assets_updated_at BEFORE UPDATE ON assets
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE generation_costs (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id        uuid REFERENCES sessions (id) ON DELETE CASCADE,
    asset_id          uuid REFERENCES assets (id) ON DELETE SET NULL,
    job_id            uuid,
    category          text NOT NULL CHECK (category IN (
                          'llm', 'image_generation', 'video_generation', 'audio_generation',
                          'text_generation', 'composition', 'storage', 'other')),
    amount            numeric(12, 6) NOT NULL CHECK (amount >= 0),
    currency          varchar(3) NOT NULL DEFAULT 'USD',
    provider          varchar(100),
    model_name        varchar(100),
    api_call_id       varchar(255),
    tokens_used       integer CHECK (tokens_used >= 0),
    seconds_processed numeric(10, 2) CHECK (seconds_processed >= 0),
    api_latency_ms    integer CHECK (api_latency_ms >= 0),
    success           boolean NOT NULL DEFAULT true,
    error_message     text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    metadata          jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX idx_generation_costs_session_id ON generation_costs (session_id);
CREATE INDEX idx_generation_costs_asset_id ON generation_costs (asset_id);
-- One cost row per job run: recording it again (after a recovery) changes nothing.
CREATE UNIQUE INDEX idx_generation_costs_job ON generation_costs (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX idx_generation_costs_category ON generation_costs (category);
CREATE INDEX idx_generation_costs_created_at ON generation_costs (created_at DESC);

-- Seed 004's trigger recomputed only NEW.session_id on INSERT/UPDATE: a deleted cost row or
-- one moved to another session left a stale total. Recompute every session a change touches.
CREATE OR REPLACE FUNCTION refresh_session_total_cost() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sid uuid;
BEGIN
    FOR sid IN
        SELECT DISTINCT s FROM unnest(ARRAY[
            CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN NEW.session_id END,
            CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN OLD.session_id END]) AS s
        WHERE s IS NOT NULL
    LOOP
        UPDATE sessions
           SET total_cost = (SELECT coalesce(sum(amount), 0)
                               FROM generation_costs WHERE session_id = sid)
         WHERE id = sid;
    END LOOP;
    RETURN NULL;
END;
$$;
CREATE TRIGGER generation_costs_session_total
    AFTER INSERT OR UPDATE OR DELETE ON generation_costs
    FOR EACH ROW EXECUTE FUNCTION refresh_session_total_cost();

CREATE TABLE websocket_connections (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connection_id     varchar(255) NOT NULL UNIQUE,
    session_id        uuid REFERENCES sessions (id) ON DELETE CASCADE,
    user_id           uuid REFERENCES users (id) ON DELETE CASCADE,
    replica           text,
    client_ip         varchar(45),
    user_agent        text,
    connected_at      timestamptz NOT NULL DEFAULT now(),
    last_heartbeat_at timestamptz NOT NULL DEFAULT now(),
    disconnected_at   timestamptz,
    metadata          jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX idx_websocket_session_id ON websocket_connections (session_id);
CREATE INDEX idx_websocket_active ON websocket_connections (last_heartbeat_at)
    WHERE disconnected_at IS NULL;
