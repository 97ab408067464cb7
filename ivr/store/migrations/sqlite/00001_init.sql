-- koel schema, SQLite dialect. Timestamps are UTC unix microseconds
-- (INTEGER); NULL means "not set". Lists and settings are JSON text.

-- +goose Up
CREATE TABLE businesses (
    id               INTEGER PRIMARY KEY,
    name             TEXT    NOT NULL,
    token_hash       BLOB,
    client_id        TEXT    NOT NULL DEFAULT '',
    fallback_message TEXT    NOT NULL DEFAULT '',
    faq_version      INTEGER NOT NULL DEFAULT 0,
    active           INTEGER NOT NULL DEFAULT 1,
    created_at       INTEGER NOT NULL
);

CREATE TABLE connections (
    id          INTEGER PRIMARY KEY,
    business_id INTEGER NOT NULL REFERENCES businesses (id),
    channel     TEXT    NOT NULL,
    identifier  TEXT    NOT NULL,
    active      INTEGER NOT NULL,
    settings    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (channel, identifier)
);
CREATE INDEX connections_business ON connections (business_id, id);

CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    business_id INTEGER NOT NULL REFERENCES businesses (id),
    channel     TEXT    NOT NULL,
    external_id TEXT    NOT NULL,
    registered  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (business_id, channel, external_id)
);

CREATE TABLE conversations (
    id              INTEGER PRIMARY KEY,
    business_id     INTEGER NOT NULL REFERENCES businesses (id),
    user_id         INTEGER NOT NULL REFERENCES users (id),
    conversation_no INTEGER NOT NULL,
    open            INTEGER NOT NULL,
    handoff         TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    closed_at       INTEGER,
    UNIQUE (user_id, conversation_no)
);
-- At most one open conversation per business and user.
CREATE UNIQUE INDEX conversations_one_open ON conversations (business_id, user_id) WHERE open;

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    business_id     INTEGER NOT NULL,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    user_id         INTEGER NOT NULL,
    sender          TEXT    NOT NULL,
    text            TEXT    NOT NULL,
    quick_replies   TEXT,
    channel         TEXT    NOT NULL,
    external_id     TEXT    NOT NULL,
    node            TEXT    NOT NULL,
    confidence      REAL    NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX messages_conversation ON messages (conversation_id, id);
-- Platform message ids are unique per business and channel (dedupe).
CREATE UNIQUE INDEX messages_external ON messages (business_id, channel, external_id) WHERE external_id <> '';

CREATE TABLE calls (
    sid             TEXT    PRIMARY KEY,
    connection_id   INTEGER NOT NULL,
    business_id     INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    conversation_id INTEGER NOT NULL,
    caller          TEXT    NOT NULL,
    called_number   TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    turn            INTEGER NOT NULL,
    failures        INTEGER NOT NULL,
    outcome         TEXT    NOT NULL,
    last_event_key  TEXT    NOT NULL,
    last_response   TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    started_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    ended_at        INTEGER
);
CREATE INDEX calls_active ON calls (state) WHERE ended_at IS NULL;

CREATE TABLE call_locks (
    sid        TEXT    PRIMARY KEY,
    owner      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE turns (
    id            INTEGER PRIMARY KEY,
    call_sid      TEXT    NOT NULL REFERENCES calls (sid),
    seq           INTEGER NOT NULL,
    recording_url TEXT    NOT NULL,
    record_status TEXT    NOT NULL,
    end_reason    TEXT    NOT NULL,
    transcript    TEXT    NOT NULL,
    confidence    REAL    NOT NULL,
    reply         TEXT    NOT NULL,
    error         TEXT    NOT NULL,
    message_id    INTEGER NOT NULL,
    speech_ms     INTEGER NOT NULL,
    fetch_ms      INTEGER NOT NULL,
    decode_ms     INTEGER NOT NULL,
    stt_ms        INTEGER NOT NULL,
    bot_ms        INTEGER NOT NULL,
    total_ms      INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX turns_call ON turns (call_sid, seq, id);

CREATE TABLE faq_nodes (
    id          INTEGER PRIMARY KEY,
    business_id INTEGER NOT NULL REFERENCES businesses (id),
    name        TEXT    NOT NULL,
    user_says   TEXT,
    bot_says    TEXT,
    active      INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (business_id, name)
);

CREATE TABLE tasks (
    id          TEXT    PRIMARY KEY,
    business_id INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    total       INTEGER NOT NULL,
    done        INTEGER NOT NULL,
    errors      TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX tasks_business ON tasks (business_id);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    connection_id   INTEGER NOT NULL,
    idempotency_key TEXT    NOT NULL UNIQUE,
    url             TEXT    NOT NULL,
    body            BLOB,
    content_type    TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL,
    max_attempts    INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    last_error      TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER
);
CREATE INDEX outbox_status ON outbox (status, id);
-- Due pending items, for ClaimOutbox.
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE status = 'pending';

-- +goose Down
DROP TABLE outbox;
DROP TABLE tasks;
DROP TABLE faq_nodes;
DROP TABLE turns;
DROP TABLE call_locks;
DROP TABLE calls;
DROP TABLE messages;
DROP TABLE conversations;
DROP TABLE users;
DROP TABLE connections;
DROP TABLE businesses;
