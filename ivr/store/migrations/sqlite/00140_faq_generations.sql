-- +goose Up
-- FAQ generations: an import writes its nodes as a new generation in short
-- transactions, invisible to readers, then one small transaction makes it
-- live (faq_generations.live); older generations are deleted afterwards.
-- A stopped import leaves only rows of a generation that never went live.
CREATE TABLE faq_generations (
    business_id INTEGER PRIMARY KEY REFERENCES businesses (id),
    live        INTEGER NOT NULL,
    allocated   INTEGER NOT NULL
);
CREATE TABLE faq_nodes_gen (
    id          INTEGER PRIMARY KEY,
    business_id INTEGER NOT NULL REFERENCES businesses (id),
    generation  INTEGER NOT NULL DEFAULT 0,
    name        TEXT    NOT NULL,
    user_says   TEXT,
    bot_says    TEXT,
    active      INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (business_id, generation, name)
);
INSERT INTO faq_nodes_gen (id, business_id, generation, name, user_says, bot_says, active, updated_at)
    SELECT id, business_id, 0, name, user_says, bot_says, active, updated_at FROM faq_nodes;
DROP TABLE faq_nodes;
ALTER TABLE faq_nodes_gen RENAME TO faq_nodes;

-- +goose Down
CREATE TABLE faq_nodes_old (
    id          INTEGER PRIMARY KEY,
    business_id INTEGER NOT NULL REFERENCES businesses (id),
    name        TEXT    NOT NULL,
    user_says   TEXT,
    bot_says    TEXT,
    active      INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (business_id, name)
);
INSERT INTO faq_nodes_old (id, business_id, name, user_says, bot_says, active, updated_at)
    SELECT n.id, n.business_id, n.name, n.user_says, n.bot_says, n.active, n.updated_at FROM faq_nodes n
    WHERE n.generation = COALESCE((SELECT live FROM faq_generations g WHERE g.business_id = n.business_id), 0);
DROP TABLE faq_nodes;
ALTER TABLE faq_nodes_old RENAME TO faq_nodes;
DROP TABLE faq_generations;
