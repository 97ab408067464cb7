-- +goose Up
-- A bot per business: the kind of bot that answers ('' = the server's
-- default, 'faq', 'remote') and, for a remote (Rasa REST) bot, its webhook
-- URL.
ALTER TABLE businesses ADD COLUMN bot_kind TEXT NOT NULL DEFAULT '';
ALTER TABLE businesses ADD COLUMN bot_url TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE businesses DROP COLUMN bot_url;
ALTER TABLE businesses DROP COLUMN bot_kind;
