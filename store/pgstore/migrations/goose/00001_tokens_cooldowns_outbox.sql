-- passreset pgstore schema version 1 (tokens_cooldowns_outbox), for goose.
-- Generated from the migrations that pgstore's Store.Migrate runs; do not edit.
-- Table prefix "passreset_". For another one: passreset schema files --dialect postgres --tool goose --prefix P --dir D
-- Expand-only: the previous program version keeps running on the result.

-- +goose Up
CREATE TABLE IF NOT EXISTS "passreset_schema_version" (
  version integer NOT NULL PRIMARY KEY,
  oldest  integer
);
ALTER TABLE "passreset_schema_version" ADD COLUMN IF NOT EXISTS oldest integer;
CREATE TABLE IF NOT EXISTS "passreset_tokens" (
  user_id    text COLLATE "C" NOT NULL PRIMARY KEY,
  token_hash bytea       NOT NULL UNIQUE,
  email      text        NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS "passreset_tokens_expires" ON "passreset_tokens" (expires_at);
CREATE TABLE IF NOT EXISTS "passreset_cooldowns" (
  cooldown_key bytea       NOT NULL PRIMARY KEY,
  ends_at      timestamptz NOT NULL,
  nonce        bytea       NOT NULL
);
CREATE INDEX IF NOT EXISTS "passreset_cooldowns_ends" ON "passreset_cooldowns" (ends_at);
CREATE TABLE IF NOT EXISTS "passreset_outbox" (
  id          text COLLATE "C" NOT NULL PRIMARY KEY,
  kind        text        NOT NULL,
  sealed      bytea       NOT NULL,
  key_id      text        NOT NULL,
  attempts    integer     NOT NULL,
  claims      integer     NOT NULL,
  not_before  timestamptz NOT NULL,
  created_at  timestamptz NOT NULL,
  dead        boolean     NOT NULL,
  last_error  text        NOT NULL,
  lease_owner text,
  lease_until timestamptz,
  nonce       bytea
);
CREATE INDEX IF NOT EXISTS "passreset_outbox_claim" ON "passreset_outbox" (not_before, created_at, id) WHERE NOT dead;
CREATE INDEX IF NOT EXISTS "passreset_outbox_pending" ON "passreset_outbox" (created_at) WHERE NOT dead;
CREATE INDEX IF NOT EXISTS "passreset_outbox_dead" ON "passreset_outbox" (created_at, id) WHERE dead;
INSERT INTO "passreset_schema_version" (version, oldest) VALUES (1, 1) ON CONFLICT DO NOTHING;

-- +goose Down
DELETE FROM "passreset_schema_version" WHERE version = 1;
