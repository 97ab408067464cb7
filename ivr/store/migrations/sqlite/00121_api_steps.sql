-- +goose Up
-- API steps by FAQ node: the declaration (faq.APIStep as JSON; header
-- secrets are ${ENV} references, never values). Written by provisioning
-- (YAML, the demo) and the admin API alike.
CREATE TABLE api_steps (
    business_id INTEGER NOT NULL REFERENCES businesses (id),
    node        TEXT    NOT NULL,
    spec        TEXT    NOT NULL,
    updated_at  INTEGER  NOT NULL,
    PRIMARY KEY (business_id, node)
);

-- +goose Down
DROP TABLE api_steps;
