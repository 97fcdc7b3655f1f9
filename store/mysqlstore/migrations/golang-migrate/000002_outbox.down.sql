-- passreset mysqlstore schema version 2 (outbox), for golang-migrate.
-- Generated from the migrations that mysqlstore's Store.Migrate runs; do not edit.
-- Table prefix "passreset_". For another one: passreset schema files --dialect mysql --tool golang-migrate --prefix P --dir D
-- Expand-only: the previous program version keeps running on the result.

DELETE FROM `passreset_schema_version` WHERE version = 2;
