-- +goose Up
-- Agent handoff: teams (with the number a caller is transferred to), their
-- agents, and one handoff row per time a chat was sent to a team. A handoff
-- is 'waiting' until due_at (the send_chat_to_agent countdown), then
-- 'queued' (the conversation's handoff is 'pending'), 'taken' by an agent
-- (handoff 'agent'), 'phone' when a caller was transferred, and 'closed'
-- when handed back to the bot.
CREATE TABLE teams (
    id          INTEGER PRIMARY KEY,
    business_id INTEGER NOT NULL REFERENCES businesses (id),
    name        TEXT    NOT NULL,
    number      TEXT    NOT NULL,
    active      INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (business_id, name)
);

CREATE TABLE agents (
    id          INTEGER PRIMARY KEY,
    business_id INTEGER NOT NULL REFERENCES businesses (id),
    team_id     INTEGER NOT NULL REFERENCES teams (id),
    name        TEXT    NOT NULL,
    active      INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (business_id, name)
);

CREATE TABLE handoffs (
    id              INTEGER PRIMARY KEY,
    business_id     INTEGER NOT NULL REFERENCES businesses (id),
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    user_id         INTEGER NOT NULL,
    team_id         INTEGER NOT NULL REFERENCES teams (id),
    status          TEXT    NOT NULL,
    due_at          INTEGER NOT NULL,
    agent_id        INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
-- At most one live handoff per conversation.
CREATE UNIQUE INDEX handoffs_one_live ON handoffs (conversation_id) WHERE status <> 'closed';
CREATE INDEX handoffs_due ON handoffs (due_at, id) WHERE status = 'waiting';
CREATE INDEX handoffs_queue ON handoffs (business_id, status, id);

-- +goose Down
DROP TABLE handoffs;
DROP TABLE agents;
DROP TABLE teams;
