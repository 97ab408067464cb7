-- +goose Up
-- A task keeps its input (the uploaded FAQ CSV) until it finishes, so a
-- task left pending or running by a restart can be run again from it.
ALTER TABLE tasks ADD COLUMN input BYTEA;
CREATE INDEX tasks_open ON tasks (kind, status, created_at);

-- +goose Down
DROP INDEX tasks_open;
ALTER TABLE tasks DROP COLUMN input;
