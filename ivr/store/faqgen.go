package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/koelvoice/koel/ivr"
)

// FAQ generations (migration 00140).
//
// A business's FAQ is the set of its faq_nodes rows of one generation, the
// live one (faq_generations.live; 0 for a business never imported since
// the migration). An import writes its nodes as a new generation in short
// transactions of faqChunkRows rows, so SQLite's single writer is never
// held for long and live traffic keeps committing between chunks; readers
// see nothing of it. Then one small transaction makes the new generation
// live and bumps the business's FAQ version; older generations are deleted
// afterwards in small batches. An import stopped anywhere before that
// transaction (a crash, a cancelled context, a lost task lease) leaves the
// previous FAQ exactly as it was: its rows sit in a generation that never
// went live, and the next import of the business deletes them.
//
// Seed upsert semantics: the import's nodes become the business's active
// nodes; nodes of the previous FAQ that the import does not name are kept,
// inactive.

// faqChunkRows is how many nodes one import transaction writes. Measured on
// SQLite: one 250-row insert holds the writer a few milliseconds.
const faqChunkRows = 250

// faqGCRows is how many rows of old generations one delete removes.
const faqGCRows = 1000

// ReplaceFAQ implements [Store]: see the generations above. Concurrent
// imports of one business each build their own generation; the first to
// finish goes live, and a later one carries the FAQ it then replaces.
func (s *sqlStore) ReplaceFAQ(ctx context.Context, businessID int64, nodes []ivr.FAQNode) (int64, error) {
	op := fmt.Sprintf("replace FAQ of business %d", businessID)
	if err := validateFAQ(nodes); err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	var one int64
	if err := s.writer().row(ctx, `SELECT id FROM businesses WHERE id = ?`, businessID).Scan(&one); err != nil {
		return 0, s.fail(op, fmt.Errorf("business %d: %w", businessID, err))
	}
	now := timeValue(s.clock())
	var gen int64
	if err := s.writer().row(ctx, `INSERT INTO faq_generations (business_id, live, allocated) VALUES (?, 0, 1)
		ON CONFLICT (business_id) DO UPDATE SET allocated = faq_generations.allocated + 1 RETURNING allocated`,
		businessID).Scan(&gen); err != nil {
		return 0, s.fail(op+": allocate generation", err)
	}
	rows := make([]faqRow, len(nodes))
	names := make(map[string]bool, len(nodes))
	for i := range nodes {
		rows[i] = faqRow{name: nodes[i].Name, userSays: nodes[i].UserSays, botSays: nodes[i].BotSays, active: true, updatedAt: now}
		names[nodes[i].Name] = true
	}
	if err := s.insertFAQRows(ctx, op, businessID, gen, rows); err != nil {
		return 0, err
	}
	var version int64
	for attempt := 0; ; attempt++ {
		base, err := s.liveFAQGeneration(ctx, businessID)
		if err != nil {
			return 0, s.fail(op, err)
		}
		// The previous FAQ's nodes the import does not name stay, inactive.
		// Read on a reader: on SQLite the writer is one connection, and
		// reading 50,000 rows on it would hold it as long as writing them.
		old, err := listRows(ctx, s, s.reader(), op, scanFAQ,
			`SELECT `+faqCols+` FROM faq_nodes WHERE business_id = ? AND generation = ? ORDER BY id`, businessID, base)
		if err != nil {
			return 0, err
		}
		var kept []faqRow
		for _, n := range old {
			if names[n.Name] {
				continue
			}
			at := timeValue(n.UpdatedAt)
			if n.Active {
				at = now
			}
			kept = append(kept, faqRow{name: n.Name, userSays: n.UserSays, botSays: n.BotSays, updatedAt: at})
		}
		if err := s.insertFAQRows(ctx, op, businessID, gen, kept); err != nil {
			return 0, err
		}
		flipped := false
		err = s.inTx(ctx, op+": go live", func(c conn) error {
			res, err := c.exec(ctx, `UPDATE faq_generations SET live = ? WHERE business_id = ? AND live = ?`, gen, businessID, base)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return err // another import went live meanwhile
			}
			flipped = true
			return c.row(ctx, `UPDATE businesses SET faq_version = faq_version + 1 WHERE id = ? RETURNING faq_version`,
				businessID).Scan(&version)
		})
		if err != nil {
			return 0, err
		}
		if flipped {
			break
		}
		if attempt == 3 {
			return 0, fmt.Errorf("%s: %w: other imports of the business keep going live first", op, ErrConflict)
		}
		// Carry the FAQ that went live instead.
		if _, err := s.writer().exec(ctx, `DELETE FROM faq_nodes WHERE business_id = ? AND generation = ? AND NOT active`, businessID, gen); err != nil {
			return 0, s.fail(op, err)
		}
	}
	s.collectFAQ(context.WithoutCancel(ctx), businessID, gen)
	return version, nil
}

// faqRow is one node as an import writes it.
type faqRow struct {
	name              string
	userSays, botSays []string
	active            bool
	updatedAt         any
}

// insertFAQRows writes rows into generation gen, faqChunkRows per
// transaction (one multi-row INSERT each), checking ctx between chunks.
func (s *sqlStore) insertFAQRows(ctx context.Context, op string, businessID, gen int64, rows []faqRow) error {
	for start := 0; start < len(rows); start += faqChunkRows {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		chunk := rows[start:min(start+faqChunkRows, len(rows))]
		var q strings.Builder
		q.WriteString(`INSERT INTO faq_nodes (business_id, generation, name, user_says, bot_says, active, updated_at) VALUES `)
		args := make([]any, 0, len(chunk)*7)
		for i := range chunk {
			r := &chunk[i]
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?)")
			args = append(args, businessID, gen, r.name, listCol{&r.userSays}, listCol{&r.botSays}, r.active, r.updatedAt)
		}
		t0 := time.Now()
		err := s.inTx(ctx, op, func(c conn) error {
			_, err := c.exec(ctx, q.String(), args...)
			return err
		})
		if err != nil {
			return fmt.Errorf("nodes %d-%d: %w", start+1, start+len(chunk), err)
		}
		if s.afterFAQChunk != nil {
			s.afterFAQChunk()
		}
		// Yield the writer as long as the chunk held it: live traffic's
		// writes queued meanwhile go first, and the import takes at most
		// about half of the writer's time.
		if start+faqChunkRows < len(rows) {
			t := time.NewTimer(time.Since(t0))
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%s: %w", op, ctx.Err())
			case <-t.C:
			}
		}
	}
	return nil
}

// liveFAQGeneration returns the business's live generation.
func (s *sqlStore) liveFAQGeneration(ctx context.Context, businessID int64) (int64, error) {
	var live int64
	err := s.writer().row(ctx, `SELECT COALESCE((SELECT live FROM faq_generations WHERE business_id = ?), 0)`, businessID).Scan(&live)
	return live, err
}

// collectFAQ deletes the business's generations older than live (the
// FAQ just replaced, and any import that stopped before going live), a
// batch at a time. A failure is logged: the next import collects them.
func (s *sqlStore) collectFAQ(ctx context.Context, businessID, live int64) {
	for {
		res, err := s.writer().exec(ctx, `DELETE FROM faq_nodes WHERE id IN
			(SELECT id FROM faq_nodes WHERE business_id = ? AND generation < ? LIMIT `+fmt.Sprint(faqGCRows)+`)`, businessID, live)
		if err != nil {
			s.log.WarnContext(ctx, "store: deleting old FAQ generations failed", "business_id", businessID, "error", err)
			return
		}
		if n, err := res.RowsAffected(); err != nil || n < faqGCRows {
			return
		}
	}
}
