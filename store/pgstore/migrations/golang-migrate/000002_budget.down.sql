-- passreset pgstore schema version 2 (budget), for golang-migrate.
-- Generated from the migrations that pgstore's Store.Migrate runs; do not edit.
-- Table prefix "passreset_". For another one: passreset schema files --dialect postgres --tool golang-migrate --prefix P --dir D
-- Expand-only: the previous program version keeps running on the result.

DELETE FROM "passreset_schema_version" WHERE version = 2;
