-- passreset pgstore schema version 5 (feedback), for golang-migrate.
-- Generated from the migrations that pgstore's Store.Migrate runs; do not edit.
-- Table prefix "passreset_". For another one: passreset schema files --dialect postgres --tool golang-migrate --prefix P --dir D
-- Expand-only: the previous program version keeps running on the result.

CREATE TABLE IF NOT EXISTS "passreset_fb_events" (
  event_id    text COLLATE "C" NOT NULL PRIMARY KEY,
  address     bytea       NOT NULL,
  type        text        NOT NULL,
  bounce      text        NOT NULL,
  detail      text        NOT NULL,
  happened_at timestamptz NOT NULL,
  received_at timestamptz NOT NULL,
  message_id  text        NOT NULL,
  provider_id text        NOT NULL,
  nonce       bytea       NOT NULL
);
CREATE INDEX IF NOT EXISTS "passreset_fb_events_addr" ON "passreset_fb_events" (address, happened_at, received_at, event_id);
CREATE INDEX IF NOT EXISTS "passreset_fb_events_recv" ON "passreset_fb_events" (received_at);
CREATE TABLE IF NOT EXISTS "passreset_suppressions" (
  address       bytea       NOT NULL PRIMARY KEY,
  suppressed_at timestamptz NULL,
  cleared_at    timestamptz NULL
);
INSERT INTO "passreset_schema_version" (version, oldest) VALUES (5, 1) ON CONFLICT DO NOTHING;
