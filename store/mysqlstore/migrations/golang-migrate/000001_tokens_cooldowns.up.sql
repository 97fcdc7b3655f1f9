-- passreset mysqlstore schema version 1 (tokens_cooldowns), for golang-migrate.
-- Generated from the migrations that mysqlstore's Store.Migrate runs; do not edit.
-- Table prefix "passreset_". For another one: passreset schema files --dialect mysql --tool golang-migrate --prefix P --dir D
-- Expand-only: the previous program version keeps running on the result.

CREATE TABLE IF NOT EXISTS `passreset_schema_version` (
  version INT UNSIGNED NOT NULL,
  oldest  INT UNSIGNED NULL,
  PRIMARY KEY (version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
SET @passreset_v0 = (SELECT IF(COUNT(*) > 0, 'DO 0',
  'ALTER TABLE `passreset_schema_version` ADD COLUMN oldest INT UNSIGNED NULL')
  FROM information_schema.columns
  WHERE table_schema = DATABASE() AND table_name = 'passreset_schema_version' AND column_name = 'oldest');
PREPARE passreset_v0 FROM @passreset_v0;
EXECUTE passreset_v0;
DEALLOCATE PREPARE passreset_v0;
CREATE TABLE IF NOT EXISTS `passreset_tokens` (
  user_id    VARBINARY(255) NOT NULL,
  token_hash BINARY(32)     NOT NULL,
  email      VARCHAR(320)   CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  created_at DATETIME(6)    NOT NULL,
  expires_at DATETIME(6)    NOT NULL,
  PRIMARY KEY (user_id),
  UNIQUE KEY token_hash (token_hash),
  KEY expires_at (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE IF NOT EXISTS `passreset_cooldowns` (
  cooldown_key BINARY(32)  NOT NULL,
  ends_at      DATETIME(6) NOT NULL,
  nonce        BINARY(16)  NOT NULL,
  PRIMARY KEY (cooldown_key),
  KEY ends_at (ends_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT IGNORE INTO `passreset_schema_version` (version, oldest) VALUES (1, 1);
