-- passreset mysqlstore schema version 4 (budget), for goose.
-- Generated from the migrations that mysqlstore's Store.Migrate runs; do not edit.
-- Table prefix "passreset_". For another one: passreset schema files --dialect mysql --tool goose --prefix P --dir D
-- Expand-only: the previous program version keeps running on the result.

-- +goose Up
CREATE TABLE IF NOT EXISTS `passreset_budget` (
  budget_key VARBINARY(255) NOT NULL,
  tat        DATETIME(6)    NOT NULL,
  PRIMARY KEY (budget_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT IGNORE INTO `passreset_schema_version` (version, oldest) VALUES (4, 3);

-- +goose Down
DELETE FROM `passreset_schema_version` WHERE version = 4;
