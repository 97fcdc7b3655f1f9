-- passreset mysqlstore schema version 2 (outbox), for goose.
-- Generated from the migrations that mysqlstore's Store.Migrate runs; do not edit.
-- Table prefix "passreset_". For another one: passreset schema files --dialect mysql --tool goose --prefix P --dir D
-- Expand-only: the previous program version keeps running on the result.

-- +goose Up
CREATE TABLE IF NOT EXISTS `passreset_outbox` (
  id          VARBINARY(64)   NOT NULL,
  kind        VARBINARY(32)   NOT NULL,
  email       VARCHAR(320)    CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  link        VARBINARY(2048) NOT NULL,
  sealed      MEDIUMBLOB      NULL,
  key_id      VARBINARY(64)   NOT NULL,
  attempts    INT             NOT NULL,
  claims      INT             NOT NULL,
  not_before  DATETIME(6)     NOT NULL,
  created_at  DATETIME(6)     NOT NULL,
  dead        BOOL            NOT NULL,
  last_error  VARCHAR(1000)   CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  lease_owner VARBINARY(255)  NULL,
  lease_until DATETIME(6)     NULL,
  nonce       BINARY(16)      NOT NULL,
  PRIMARY KEY (id),
  KEY claim_order (dead, not_before, created_at, id),
  KEY dead_created (dead, created_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT IGNORE INTO `passreset_schema_version` (version, oldest) VALUES (2, 1);

-- +goose Down
DELETE FROM `passreset_schema_version` WHERE version = 2;
