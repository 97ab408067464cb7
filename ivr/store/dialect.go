package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

// dialect holds what differs between the SQL databases koel supports. Every
// query is written once with '?' placeholders in the syntax both databases
// accept (INSERT … ON CONFLICT … DO UPDATE, RETURNING, partial indexes) and
// rebound for the dialect when the store is opened.
type dialect struct {
	// name is "sqlite" or "postgres" (for errors and logs).
	name string
	// dollarPlaceholders rewrites '?' as $1, $2, … (PostgreSQL).
	dollarPlaceholders bool
	// skipLocked is appended to the row-selecting sub-query of ClaimOutbox:
	// " FOR UPDATE SKIP LOCKED" on PostgreSQL, where claimers run
	// concurrently; empty on SQLite, whose single writer serializes them.
	skipLocked string
	// isUnique reports a unique or primary key violation.
	isUnique func(error) bool
	// isForeignKey reports a foreign key violation (a referenced row is
	// missing).
	isForeignKey func(error) bool
	// syncIdentity, when set, moves a table's id generator past ids that
	// were inserted explicitly (PostgreSQL identity columns do not follow
	// explicit inserts; SQLite rowids do).
	syncIdentity func(ctx context.Context, tx *sql.Tx, table string) error
}

// limitParam is the placeholder for a LIMIT bound per call. SQLite's
// planner reads a bare "LIMIT ?" from the binding and marks the statement
// to be prepared again whenever that parameter is bound, so a cached
// statement was re-parsed on every call (12 % of the CPU of a Messenger
// message: ListMessages and ClaimOutbox). A CAST is not a bare parameter:
// the limit is evaluated when the statement runs and the statement stays
// prepared. PostgreSQL takes the same text.
const limitParam = "CAST(? AS INTEGER)"

// rebind rewrites the '?' placeholders of query for the dialect. Queries in
// this package hold no '?' inside string literals.
func (d *dialect) rebind(query string) string {
	if !d.dollarPlaceholders {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}
