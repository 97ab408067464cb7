-- +goose Up
-- A task's input (the uploaded FAQ CSV, up to tens of megabytes) moves to
-- its own table: SQLite rewrites a whole row, overflow pages included, on
-- every UPDATE, so each progress write, lease renewal and claim of an
-- import task rewrote its 5 MB CSV and held the single writer for tens of
-- milliseconds (the bot API's p99 during a 50,000-row import).
CREATE TABLE task_inputs (
    task_id TEXT PRIMARY KEY REFERENCES tasks (id),
    input   BYTEA NOT NULL
);
INSERT INTO task_inputs (task_id, input) SELECT id, input FROM tasks WHERE input IS NOT NULL;
ALTER TABLE tasks DROP COLUMN input;

-- +goose Down
ALTER TABLE tasks ADD COLUMN input BYTEA;
UPDATE tasks SET input = (SELECT i.input FROM task_inputs i WHERE i.task_id = tasks.id);
DROP TABLE task_inputs;
