-- Documents registered with `comfygraph persist` (the PERSISTED_QUERIES_ONLY allow-list),
-- keyed by the sha256 of their exact text, as clients send it.
CREATE TABLE persisted_queries (
    sha256     text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    query      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
