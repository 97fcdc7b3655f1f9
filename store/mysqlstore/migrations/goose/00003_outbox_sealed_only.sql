-- passreset mysqlstore schema version 3 (outbox_sealed_only), for goose.
-- Generated from the migrations that mysqlstore's Store.Migrate runs; do not edit.
-- Table prefix "passreset_". For another one: passreset schema files --dialect mysql --tool goose --prefix P --dir D
-- Contracting: programs older than schema version 3 stop; it has no down migration.

-- +goose Up
DELETE FROM `passreset_outbox` WHERE sealed IS NULL;
SET @passreset_v3 = (SELECT IF(COUNT(*) = 0, 'DO 0',
  'ALTER TABLE `passreset_outbox` DROP COLUMN email, DROP COLUMN link, MODIFY sealed MEDIUMBLOB NOT NULL')
  FROM information_schema.columns
  WHERE table_schema = DATABASE() AND table_name = 'passreset_outbox' AND column_name = 'email');
PREPARE passreset_v3 FROM @passreset_v3;
EXECUTE passreset_v3;
DEALLOCATE PREPARE passreset_v3;
INSERT IGNORE INTO `passreset_schema_version` (version, oldest) VALUES (3, 3);
