-- Workflow templates managed at runtime (issue 15): each publish is a new version row;
-- a workflow's current version is its highest (files on disk are version 0 and have no
-- row). A deprecated name takes no new submissions; its jobs and versions stay.
CREATE TABLE workflow_versions (
    name        text NOT NULL,
    version     integer NOT NULL CHECK (version > 0),
    template    jsonb NOT NULL,
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

CREATE TABLE workflow_deprecations (
    name          text PRIMARY KEY,
    deprecated_by uuid REFERENCES users (id) ON DELETE SET NULL,
    deprecated_at timestamptz NOT NULL DEFAULT now()
);

-- The template version each job ran (NULL: created before versions were recorded).
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['video_jobs', 'image_jobs', 'text_jobs', 'audio_jobs'] LOOP
        EXECUTE format('ALTER TABLE %I ADD COLUMN template_version integer', t);
    END LOOP;
END $$;
