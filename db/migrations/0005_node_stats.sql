-- Past run time of each node of each workflow: the progress weights and ETAs.
-- node_id '*' holds the workflow's whole run time.
CREATE TABLE workflow_node_stats (
    workflow_name text NOT NULL,
    node_id       text NOT NULL,
    avg_seconds   double precision NOT NULL CHECK (avg_seconds >= 0),
    samples       integer NOT NULL DEFAULT 1 CHECK (samples > 0),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_name, node_id)
);
