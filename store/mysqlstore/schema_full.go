//go:build !passreset_oldschema

package mysqlstore

// withheld is how many of the newest migrations this build leaves out: 0.
// The passreset_oldschema build tag makes it 1, so that the upgrade tests
// can build the previous schema version's program from this source.
const withheld = 0
