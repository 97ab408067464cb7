-- +goose Up
-- FAQ generations: an import writes its nodes as a new generation in short
-- transactions, invisible to readers, then one small transaction makes it
-- live (faq_generations.live); older generations are deleted afterwards.
-- A stopped import leaves only rows of a generation that never went live.
CREATE TABLE faq_generations (
    business_id BIGINT PRIMARY KEY REFERENCES businesses (id),
    live        BIGINT NOT NULL,
    allocated   BIGINT NOT NULL
);
ALTER TABLE faq_nodes ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE faq_nodes DROP CONSTRAINT faq_nodes_business_id_name_key;
ALTER TABLE faq_nodes ADD CONSTRAINT faq_nodes_business_id_generation_name_key UNIQUE (business_id, generation, name);

-- +goose Down
DELETE FROM faq_nodes n WHERE n.generation <> COALESCE((SELECT live FROM faq_generations g WHERE g.business_id = n.business_id), 0);
ALTER TABLE faq_nodes DROP CONSTRAINT faq_nodes_business_id_generation_name_key;
ALTER TABLE faq_nodes ADD CONSTRAINT faq_nodes_business_id_name_key UNIQUE (business_id, name);
ALTER TABLE faq_nodes DROP COLUMN generation;
DROP TABLE faq_generations;
