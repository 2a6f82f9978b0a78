-- Tokens are checked against their user (issue 11): a token carries the user's
-- token_version ("ver") when issued, and is refused once the version moved on. The
-- version moves on by itself when the role, the password, or deletion/disabling change
-- (so a demoted admin's old token stops working), and by `comfygraph revoke-tokens`.

ALTER TABLE users ADD COLUMN IF NOT EXISTS token_version integer NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN IF NOT EXISTS disabled_at timestamptz;

CREATE OR REPLACE FUNCTION users_bump_token_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.role IS DISTINCT FROM OLD.role
       OR NEW.password_hash IS DISTINCT FROM OLD.password_hash
       OR NEW.deleted_at IS DISTINCT FROM OLD.deleted_at
       OR NEW.disabled_at IS DISTINCT FROM OLD.disabled_at THEN
        NEW.token_version = GREATEST(NEW.token_version, OLD.token_version + 1);
    END IF;
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS users_token_version ON users;
CREATE TRIGGER users_token_version BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION users_bump_token_version();
