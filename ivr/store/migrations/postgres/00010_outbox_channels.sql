-- +goose Up
-- Outbound delivery per channel: the Sender that delivers an item, the
-- platform user it is for (items of one connection and recipient are
-- delivered in id order), and the start of its retry horizon (creation, or
-- the last redelivery of a dead letter; NULL means created_at).
ALTER TABLE outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'webhook';
ALTER TABLE outbox ADD COLUMN recipient TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN retry_from BIGINT;
-- Pending items per conversation, for the ordering check of ClaimOutbox.
CREATE INDEX outbox_conversation ON outbox (connection_id, recipient, id) WHERE status = 'pending';

-- +goose Down
DROP INDEX outbox_conversation;
ALTER TABLE outbox DROP COLUMN retry_from;
ALTER TABLE outbox DROP COLUMN recipient;
ALTER TABLE outbox DROP COLUMN channel;
