-- +goose Up
-- A worker claims a task with a lease (ClaimTask), so two koel nodes on one
-- database never both apply one import: claimed_by names the worker,
-- lease_until (unix microseconds) is when another worker may take it over.
ALTER TABLE tasks ADD COLUMN claimed_by TEXT;
ALTER TABLE tasks ADD COLUMN lease_until INTEGER;

-- +goose Down
ALTER TABLE tasks DROP COLUMN lease_until;
ALTER TABLE tasks DROP COLUMN claimed_by;
