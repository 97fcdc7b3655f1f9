-- passreset mysqlstore schema version 5 (secrets), for goose.
-- Generated from the migrations that mysqlstore's Store.Migrate runs; do not edit.
-- Table prefix "passreset_". For another one: passreset schema files --dialect mysql --tool goose --prefix P --dir D
-- Expand-only: the previous program version keeps running on the result.

-- +goose Up
CREATE TABLE IF NOT EXISTS `passreset_secrets` (
  name   VARBINARY(64) NOT NULL,
  secret VARBINARY(64) NOT NULL,
  PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT IGNORE INTO `passreset_schema_version` (version, oldest) VALUES (5, 3);

-- +goose Down
DELETE FROM `passreset_schema_version` WHERE version = 5;
