//go:build passreset_oldschema

package mysqlstore

// withheld is how many of the newest migrations this build leaves out: the
// passreset_oldschema build tag makes a program that believes its newest
// migration is the one before the last, for the upgrade tests, which run
// the previous and the current program side by side on one database.
const withheld = 1
