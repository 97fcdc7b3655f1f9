-- passreset pgstore schema version 4 (stamp_quotas), for goose.
-- Generated from the migrations that pgstore's Store.Migrate runs; do not edit.
-- Table prefix "passreset_". For another one: passreset schema files --dialect postgres --tool goose --prefix P --dir D
-- Expand-only: the previous program version keeps running on the result.

-- +goose Up
ALTER TABLE "passreset_tokens" ADD COLUMN IF NOT EXISTS stamp bytea;
CREATE TABLE IF NOT EXISTS "passreset_quotas" (
  quota_key bytea       NOT NULL PRIMARY KEY,
  uses      bytea       NOT NULL,
  ends_at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS "passreset_quotas_ends" ON "passreset_quotas" (ends_at);
INSERT INTO "passreset_schema_version" (version, oldest) VALUES (4, 1) ON CONFLICT DO NOTHING;

-- +goose Down
DELETE FROM "passreset_schema_version" WHERE version = 4;
