-- Signed webhooks (Standard Webhooks): endpoints, a durable outbox of deliveries and the
-- log of their attempts. Deliveries of a status change are written by triggers, so they
-- commit in the very transaction of the change whatever code path made it (runner,
-- cancel, recovery, session pipeline): nothing committed is ever without its deliveries.

CREATE TABLE webhook_endpoints (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             uuid REFERENCES users (id) ON DELETE CASCADE,  -- NULL: global (admins)
    url                 text NOT NULL CHECK (url <> ''),
    events              text[] NOT NULL CHECK (cardinality(events) > 0),
    secret              text NOT NULL,
    -- the secret before the last rotation still signs (a second signature) until then
    previous_secret     text,
    previous_expires_at timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    disabled_at         timestamptz,
    disabled_reason     text,
    deleted_at          timestamptz
);
CREATE INDEX idx_webhook_endpoints_user ON webhook_endpoints (user_id) WHERE deleted_at IS NULL;

-- The secret that signs a user's one-off `webhookUrl` deliveries (Me.webhookSecret).
ALTER TABLE users ADD COLUMN webhook_secret text;

CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),  -- the webhook-id
    endpoint_id     uuid REFERENCES webhook_endpoints (id) ON DELETE CASCADE,  -- NULL: one-off
    user_id         uuid REFERENCES users (id) ON DELETE CASCADE,
    url             text NOT NULL,
    event           text NOT NULL,
    subject_type    text NOT NULL CHECK (subject_type IN ('video', 'image', 'text', 'audio',
                                                          'session')),
    subject_id      uuid NOT NULL,
    data            jsonb NOT NULL DEFAULT '{}'::jsonb,  -- what the event saw (status, progress)
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered',
                                                                      'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,  -- a sender's hold; expired: any replica takes it again
    last_status_code integer,
    last_error      text,
    event_at        timestamptz NOT NULL DEFAULT now(),
    retry_since     timestamptz NOT NULL DEFAULT now(),  -- retries stop WEBHOOK_RETRY_HOURS after
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
CREATE INDEX idx_webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX idx_webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at DESC);
CREATE INDEX idx_webhook_deliveries_subject ON webhook_deliveries (subject_id, event, created_at DESC);

CREATE TABLE webhook_attempts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id   uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at  timestamptz NOT NULL DEFAULT now(),
    status_code   integer,
    latency_ms    integer,
    error         text,
    response_body text CHECK (octet_length(response_body) <= 1024)
);
CREATE INDEX idx_webhook_attempts_delivery ON webhook_attempts (delivery_id, attempted_at);

-- A one-off webhookUrl given on submit.
ALTER TABLE video_jobs ADD COLUMN webhook_url text;
ALTER TABLE image_jobs ADD COLUMN webhook_url text;
ALTER TABLE text_jobs ADD COLUMN webhook_url text;
ALTER TABLE audio_jobs ADD COLUMN webhook_url text;

-- One delivery per live endpoint of the subject's owner (and per global endpoint) that
-- listens to `event`, plus the one-off URL.
CREATE OR REPLACE FUNCTION enqueue_webhooks(
    p_event text, p_subject_type text, p_subject_id uuid, p_user_id uuid,
    p_one_off text, p_data jsonb
) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    INSERT INTO webhook_deliveries (endpoint_id, user_id, url, event, subject_type, subject_id,
                                    data)
    SELECT e.id, p_user_id, e.url, p_event, p_subject_type, p_subject_id, p_data
      FROM webhook_endpoints e
     WHERE e.deleted_at IS NULL AND e.disabled_at IS NULL AND p_event = ANY (e.events)
       AND (e.user_id IS NULL OR e.user_id = p_user_id);
    GET DIAGNOSTICS n = ROW_COUNT;
    IF p_one_off IS NOT NULL THEN
        INSERT INTO webhook_deliveries (user_id, url, event, subject_type, subject_id, data)
        VALUES (p_user_id, p_one_off, p_event, p_subject_type, p_subject_id, p_data);
        n := n + 1;
    END IF;
    RETURN n;
END;
$$;

CREATE OR REPLACE FUNCTION job_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM enqueue_webhooks(
        'job.' || NEW.status, TG_ARGV[0], NEW.id, NEW.user_id, NEW.webhook_url,
        jsonb_build_object('status', NEW.status, 'progress', NEW.progress));
    RETURN NULL;
END;
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['video', 'image', 'text', 'audio'] LOOP
        EXECUTE format($f$
            CREATE TRIGGER %1$s_jobs_webhooks AFTER UPDATE OF status ON %1$s_jobs
                FOR EACH ROW
                WHEN (NEW.status IS DISTINCT FROM OLD.status
                      AND NEW.status IN ('completed', 'failed', 'cancelled'))
                EXECUTE FUNCTION job_webhooks(%1$L)$f$, t);
    END LOOP;
END;
$$;

CREATE OR REPLACE FUNCTION session_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM enqueue_webhooks(
        'session.' || NEW.status, 'session', NEW.id, NEW.user_id, NULL,
        jsonb_build_object('status', NEW.status, 'progress', NEW.progress_percentage));
    RETURN NULL;
END;
$$;
CREATE TRIGGER sessions_webhooks AFTER UPDATE OF status ON sessions
    FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status AND NEW.status IN ('completed', 'failed'))
    EXECUTE FUNCTION session_webhooks();
