package store

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/koelvoice/koel/ivr"
)

func faqRows(t *testing.T, s *sqlStore, businessID int64) (rows, generations int) {
	t.Helper()
	if err := s.read.QueryRowContext(t.Context(), `SELECT COUNT(*), COUNT(DISTINCT generation) FROM faq_nodes WHERE business_id = ?`,
		businessID).Scan(&rows, &generations); err != nil {
		t.Fatal(err)
	}
	return rows, generations
}

func testNodes(n int, answer string) []ivr.FAQNode {
	nodes := make([]ivr.FAQNode, n)
	for i := range nodes {
		nodes[i] = ivr.FAQNode{Name: fmt.Sprintf("node_%04d", i), UserSays: []string{fmt.Sprintf("question %d", i)}, BotSays: []string{answer}}
	}
	return nodes
}

// TestFAQImportStoppedMidwayAppliesNothing: an import stopped after some
// of its chunks were written leaves the previous FAQ and its version
// exactly as they were; the next import goes live whole and deletes both
// the replaced generation and the stopped import's rows.
func TestFAQImportStoppedMidwayAppliesNothing(t *testing.T) {
	s := openTestSQLite(t)
	ctx := t.Context()
	b := ivr.Business{Name: "b"}
	if err := s.CreateBusiness(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReplaceFAQ(ctx, b.ID, testNodes(300, "first")); err != nil {
		t.Fatal(err)
	}
	before, err := s.ListFAQ(ctx, b.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	// 1,000 nodes are 4 chunks; the worker stops after the second.
	stop, cancel := context.WithCancel(ctx)
	chunks := 0
	s.afterFAQChunk = func() {
		if chunks++; chunks == 2 {
			cancel()
		}
	}
	_, err = s.ReplaceFAQ(stop, b.ID, testNodes(1000, "second"))
	s.afterFAQChunk = nil
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped import = %v, want context.Canceled", err)
	}
	after, err := s.ListFAQ(ctx, b.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) || after[0].BotSays[0] != "first" || after[0].ID != before[0].ID {
		t.Fatalf("after a stopped import the FAQ has %d nodes (%v), want the previous %d", len(after), after[0].BotSays, len(before))
	}
	if got, _ := s.GetBusiness(ctx, b.ID); got.FAQVersion != 1 {
		t.Fatalf("FAQVersion = %d after a stopped import, want 1", got.FAQVersion)
	}
	if rows, gens := faqRows(t, s, b.ID); rows != 300+2*faqChunkRows || gens != 2 {
		t.Fatalf("%d rows in %d generations, want the live 300 and two unseen chunks", rows, gens)
	}

	v, err := s.ReplaceFAQ(ctx, b.ID, testNodes(1000, "third")[:600])
	if err != nil || v != 2 {
		t.Fatalf("next import = %d, %v", v, err)
	}
	active, err := s.ListFAQ(ctx, b.ID, true)
	if err != nil || len(active) != 600 || active[0].BotSays[0] != "third" {
		t.Fatalf("active after the next import: %d nodes, %v", len(active), err)
	}
	if rows, gens := faqRows(t, s, b.ID); rows != 600 || gens != 1 {
		t.Fatalf("%d rows in %d generations after collection, want 600 in 1", rows, gens)
	}
}

// TestFAQImportKeepsUnnamedNodesInactive: the seed's upsert across
// generations: a node the import does not name stays, inactive, with its
// answer.
func TestFAQImportKeepsUnnamedNodesInactive(t *testing.T) {
	s := openTestSQLite(t)
	ctx := t.Context()
	b := ivr.Business{Name: "b"}
	if err := s.CreateBusiness(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReplaceFAQ(ctx, b.ID, testNodes(600, "first")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReplaceFAQ(ctx, b.ID, testNodes(600, "second")[100:]); err != nil {
		t.Fatal(err)
	}
	all, err := s.ListFAQ(ctx, b.ID, false)
	if err != nil || len(all) != 600 {
		t.Fatalf("%d nodes, %v", len(all), err)
	}
	for _, n := range all {
		retired := n.Name < "node_0100"
		if n.Active == retired || (retired && n.BotSays[0] != "first") || (!retired && n.BotSays[0] != "second") {
			t.Fatalf("node %+v", n)
		}
	}
}
