-- comfygraph initial schema: users, the four output-type job tables (seed 000 option C,
-- seed 002's targets), the ad-video session tables of seed 004, and their triggers.
-- Seed 004 fixes: uuid user ids (ARCHITECTURE.md); asset url nullable (a generating asset
-- has none yet); asset source free text (workflow names, not a closed vendor enum);
-- generation_costs.session_id nullable and linked to its job (jobs outside sessions cost too);
-- the total_cost trigger also handles DELETE and a row moved between sessions;
-- websocket_connections not tied to a session (a socket may follow only jobs).

CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END;
$$;

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL CHECK (email ~ '^[^@\s]+@[^@\s]+$'),
    password_hash text NOT NULL,
    full_name     text,
    role          text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz,
    deleted_at    timestamptz
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX idx_users_created_at ON users (created_at DESC);
CREATE TRIGGER users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE sessions (
    id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id                  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status                   text NOT NULL DEFAULT 'created' CHECK (status IN (
                                 'created', 'prompting', 'generating_images', 'reviewing_images',
                                 'generating_videos', 'reviewing_videos', 'composing',
                                 'completed', 'failed', 'cancelled')),
    current_stage            text,
    progress_percentage      integer NOT NULL DEFAULT 0
                                 CHECK (progress_percentage BETWEEN 0 AND 100),
    product_category         text CHECK (product_category IN (
                                 'footwear', 'accessories', 'electronics', 'beauty', 'apparel',
                                 'home', 'other')),
    user_product_prompt      text,
    user_video_prompt        text,
    consistency_seed         integer,
    style_keywords           text[] NOT NULL DEFAULT '{}',
    generated_image_ids      uuid[] NOT NULL DEFAULT '{}',
    approved_image_ids       uuid[] NOT NULL DEFAULT '{}',
    generated_clip_ids       uuid[] NOT NULL DEFAULT '{}',
    approved_clip_ids        uuid[] NOT NULL DEFAULT '{}',
    final_video_id           uuid,
    product_name             varchar(100),
    call_to_action           varchar(100),
    text_color               varchar(7) CHECK (text_color ~ '^#[0-9A-Fa-f]{6}$'),
    text_font                varchar(50),
    background_music_enabled boolean NOT NULL DEFAULT false,
    music_genre              varchar(50),
    music_url                text,
    total_cost               numeric(12, 6) NOT NULL DEFAULT 0 CHECK (total_cost >= 0),
    estimated_cost           numeric(12, 6) CHECK (estimated_cost >= 0),
    num_images_requested     integer NOT NULL DEFAULT 6 CHECK (num_images_requested BETWEEN 1 AND 12),
    clip_duration_seconds    numeric(4, 2) NOT NULL DEFAULT 3.0
                                 CHECK (clip_duration_seconds > 0 AND clip_duration_seconds <= 10),
    error_message            text,
    retry_count              integer NOT NULL DEFAULT 0 CHECK (retry_count >= 0),
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    completed_at             timestamptz,
    deleted_at               timestamptz,
    metadata                 jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX idx_sessions_user_feed ON sessions (user_id, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX idx_sessions_feed ON sessions (created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX idx_sessions_status ON sessions (status) WHERE deleted_at IS NULL;
CREATE INDEX idx_sessions_updated_at ON sessions (updated_at DESC);
CREATE INDEX idx_sessions_product_category ON sessions (product_category);
CREATE INDEX idx_sessions_style_keywords ON sessions USING gin (style_keywords);
CREATE TRIGGER sessions_updated_at BEFORE UPDATE ON sessions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
