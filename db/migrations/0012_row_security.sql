-- Row-level security as a second wall (issue 11). The application's visibility rules
-- stay in db/visibility.py; PostgreSQL enforces the same ones for the per-request GraphQL
-- work, which runs in a transaction as comfygraph_request (SET LOCAL ROLE, a role without
-- BYPASSRLS) with comfygraph.viewer_id / comfygraph.viewer_role set (resolvers/request_db.py).
-- The connecting role (migrations, dispatcher, runner, sessions: the maintenance side)
-- owns the tables and is not subject to these policies, which name comfygraph_request only.

-- Roles are cluster-wide: several databases of one server (the tests' per-module
-- databases) may run this at once.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'comfygraph_request') THEN
        CREATE ROLE comfygraph_request NOLOGIN NOBYPASSRLS;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END;
$$;

DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'comfygraph_request', 'MEMBER') THEN
        EXECUTE format('GRANT comfygraph_request TO %I', current_user);
    END IF;
EXCEPTION WHEN OTHERS THEN
    NULL;  -- a concurrent grant of the same membership
END;
$$;

GRANT USAGE ON SCHEMA public TO comfygraph_request;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO comfygraph_request;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO comfygraph_request;
-- Tables of later migrations are usable by requests too.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO comfygraph_request;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO comfygraph_request;

-- The viewer of this transaction is `uid`'s owner, or an admin (db/visibility.py).
CREATE OR REPLACE FUNCTION comfygraph_viewer_owns(uid uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('comfygraph.viewer_role', true), '') = 'admin'
        OR (uid IS NOT NULL
            AND uid::text = nullif(current_setting('comfygraph.viewer_id', true), ''))
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['video_jobs', 'image_jobs', 'text_jobs', 'audio_jobs'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS request_read ON %I', t);
        EXECUTE format('DROP POLICY IF EXISTS request_write ON %I', t);
        -- can_see_job: public, own, or admin
        EXECUTE format('CREATE POLICY request_read ON %I FOR SELECT TO comfygraph_request
                        USING (public OR comfygraph_viewer_owns(user_id))', t);
        -- can_change_job: own, or admin
        EXECUTE format('CREATE POLICY request_write ON %I FOR ALL TO comfygraph_request
                        USING (comfygraph_viewer_owns(user_id))
                        WITH CHECK (comfygraph_viewer_owns(user_id))', t);
    END LOOP;
END;
$$;

-- can_see_session: own, or admin
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS request_all ON sessions;
CREATE POLICY request_all ON sessions FOR ALL TO comfygraph_request
    USING (comfygraph_viewer_owns(user_id)) WITH CHECK (comfygraph_viewer_owns(user_id));

-- can_see_asset: through its session (the subquery is itself held to sessions' policy)
ALTER TABLE assets ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS request_all ON assets;
CREATE POLICY request_all ON assets FOR ALL TO comfygraph_request
    USING (EXISTS (SELECT 1 FROM sessions s WHERE s.id = assets.session_id))
    WITH CHECK (EXISTS (SELECT 1 FROM sessions s WHERE s.id = assets.session_id));

-- Costs: through their session; a cost outside any session only for admins.
ALTER TABLE generation_costs ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS request_all ON generation_costs;
CREATE POLICY request_all ON generation_costs FOR ALL TO comfygraph_request
    USING (CASE WHEN session_id IS NULL THEN comfygraph_viewer_owns(NULL)
                ELSE EXISTS (SELECT 1 FROM sessions s WHERE s.id = generation_costs.session_id)
           END)
    WITH CHECK (CASE WHEN session_id IS NULL THEN comfygraph_viewer_owns(NULL)
                     ELSE EXISTS (SELECT 1 FROM sessions s
                                  WHERE s.id = generation_costs.session_id)
                END);
