-- passreset mysqlstore schema version 7 (feedback), for goose.
-- Generated from the migrations that mysqlstore's Store.Migrate runs; do not edit.
-- Table prefix "passreset_". For another one: passreset schema files --dialect mysql --tool goose --prefix P --dir D
-- Expand-only: the previous program version keeps running on the result.

-- +goose Up
CREATE TABLE IF NOT EXISTS `passreset_fb_events` (
  event_id    VARBINARY(255) NOT NULL,
  address     BINARY(32)     NOT NULL,
  type        VARBINARY(16)  NOT NULL,
  bounce      VARBINARY(8)   NOT NULL,
  detail      VARBINARY(64)  NOT NULL,
  happened_at DATETIME(6)    NOT NULL,
  received_at DATETIME(6)    NOT NULL,
  message_id  VARBINARY(64)  NOT NULL,
  provider_id VARBINARY(255) NOT NULL,
  nonce       BINARY(16)     NOT NULL,
  PRIMARY KEY (event_id),
  KEY address_time (address, happened_at, received_at, event_id),
  KEY received_at (received_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE IF NOT EXISTS `passreset_suppressions` (
  address       BINARY(32)  NOT NULL,
  suppressed_at DATETIME(6) NULL,
  cleared_at    DATETIME(6) NULL,
  PRIMARY KEY (address)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT IGNORE INTO `passreset_schema_version` (version, oldest) VALUES (7, 3);

-- +goose Down
DELETE FROM `passreset_schema_version` WHERE version = 7;
