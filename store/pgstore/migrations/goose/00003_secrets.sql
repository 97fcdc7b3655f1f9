-- passreset pgstore schema version 3 (secrets), for goose.
-- Generated from the migrations that pgstore's Store.Migrate runs; do not edit.
-- Table prefix "passreset_". For another one: passreset schema files --dialect postgres --tool goose --prefix P --dir D
-- Expand-only: the previous program version keeps running on the result.

-- +goose Up
CREATE TABLE IF NOT EXISTS "passreset_secrets" (
  name   text COLLATE "C" NOT NULL PRIMARY KEY,
  secret bytea NOT NULL
);
INSERT INTO "passreset_schema_version" (version, oldest) VALUES (3, 1) ON CONFLICT DO NOTHING;

-- +goose Down
DELETE FROM "passreset_schema_version" WHERE version = 3;
