-- +goose Up
-- What a frontend told koel about a user when registering it (the
-- other-channels API's bot_user names and the custom domain it came from).
CREATE TABLE user_profiles (
    user_id    BIGINT PRIMARY KEY REFERENCES users (id),
    first_name TEXT    NOT NULL,
    last_name  TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    updated_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE user_profiles;
