-- passreset mysqlstore schema version 6 (stamp_quotas), for goose.
-- Generated from the migrations that mysqlstore's Store.Migrate runs; do not edit.
-- Table prefix "passreset_". For another one: passreset schema files --dialect mysql --tool goose --prefix P --dir D
-- Expand-only: the previous program version keeps running on the result.

-- +goose Up
SET @passreset_v6 = (SELECT IF(COUNT(*) > 0, 'DO 0',
  'ALTER TABLE `passreset_tokens` ADD COLUMN stamp BINARY(32) NULL')
  FROM information_schema.columns
  WHERE table_schema = DATABASE() AND table_name = 'passreset_tokens' AND column_name = 'stamp');
PREPARE passreset_v6 FROM @passreset_v6;
EXECUTE passreset_v6;
DEALLOCATE PREPARE passreset_v6;
CREATE TABLE IF NOT EXISTS `passreset_quotas` (
  quota_key BINARY(32)  NOT NULL,
  uses      BLOB        NOT NULL,
  ends_at   DATETIME(6) NOT NULL,
  PRIMARY KEY (quota_key),
  KEY ends_at (ends_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT IGNORE INTO `passreset_schema_version` (version, oldest) VALUES (6, 3);

-- +goose Down
DELETE FROM `passreset_schema_version` WHERE version = 6;
