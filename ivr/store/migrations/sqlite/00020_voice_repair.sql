-- +goose Up
-- Dialogue repair: the call's repair state (misses, the answer awaiting a
-- yes, the topic menu's options) as JSON text, and each turn's
-- understanding band. Idle live calls are found by their last update, for
-- the abandoned-call sweeper.
ALTER TABLE calls ADD COLUMN repair TEXT NOT NULL DEFAULT '';
ALTER TABLE turns ADD COLUMN understanding TEXT NOT NULL DEFAULT '';
CREATE INDEX calls_idle ON calls (updated_at) WHERE ended_at IS NULL;

-- +goose Down
DROP INDEX calls_idle;
ALTER TABLE turns DROP COLUMN understanding;
ALTER TABLE calls DROP COLUMN repair;
