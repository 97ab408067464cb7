package faq_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot"
	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/demo/demofaq"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// TestImportRealStore imports the demo FAQ into the real SQLite store (and
// PostgreSQL when KOEL_TEST_DATABASE_URL is set), answers from it, checks a
// failed import changes nothing, and checks the upsert semantics of a second
// import.
func TestImportRealStore(t *testing.T) {
	for name, open := range map[string]func(testing.TB, ...store.Option) store.Store{
		"sqlite":   storetest.NewSQLite,
		"postgres": storetest.NewPostgres,
	} {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			biz := &ivr.Business{Name: "bluebird", FallbackMessage: "Sorry, ask me about orders.", Active: true}
			if err := s.CreateBusiness(ctx, biz); err != nil {
				t.Fatal(err)
			}
			res, err := faq.Import(ctx, s, biz.ID, bytes.NewReader(demofaq.CSV()), faq.ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Nodes != 21 || res.Version < 1 {
				t.Fatalf("result %+v, want 21 nodes and a version", res)
			}

			b := faq.New(s, faq.Options{})
			r, err := b.Reply(ctx, bot.Request{BusinessID: biz.ID, UserID: "u", Text: "where is my parcel"})
			if err != nil || r.Node != "order_status" {
				t.Fatalf("Reply = %+v, %v; want node order_status", r, err)
			}

			// A file with a bad row changes nothing.
			bad := "node_name,user_says,bot_says\nfresh,new question,New answer\n,orphan,row\n"
			var pe *faq.ParseError
			if _, err := faq.Import(ctx, s, biz.ID, strings.NewReader(bad), faq.ImportOptions{}); !errors.As(err, &pe) {
				t.Fatalf("bad import err = %v, want *ParseError", err)
			}
			nodes, err := s.ListFAQ(ctx, biz.ID, true)
			if err != nil || len(nodes) != 21 {
				t.Fatalf("after failed import: %d active nodes, %v; want 21", len(nodes), err)
			}

			// A new file deactivates the nodes it lacks and updates by name.
			next := "node_name,user_says,bot_says\norder_status,where is my order,Tell me your order number.\nfresh,new question,New answer\n"
			res2, err := faq.Import(ctx, s, biz.ID, strings.NewReader(next), faq.ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res2.Version <= res.Version {
				t.Errorf("version %d after %d, want it to increase", res2.Version, res.Version)
			}
			active, err := s.ListFAQ(ctx, biz.ID, true)
			if err != nil || len(active) != 2 {
				t.Fatalf("after re-import: %d active nodes, %v; want 2", len(active), err)
			}
			all, err := s.ListFAQ(ctx, biz.ID, false)
			if err != nil || len(all) != 22 {
				t.Fatalf("after re-import: %d nodes in all, %v; want 22", len(all), err)
			}
			r, err = b.Reply(ctx, bot.Request{BusinessID: biz.ID, UserID: "u", Text: "where is my order"})
			if err != nil || r.Node != "order_status" || r.Messages[0].Text != "Tell me your order number." {
				t.Errorf("after re-import Reply = %+v, %v; want the updated order_status", r, err)
			}
			r, err = b.Reply(ctx, bot.Request{BusinessID: biz.ID, UserID: "u", Text: "what are your opening hours"})
			if err != nil || !r.Fallback || r.Messages[0].Text != "Sorry, ask me about orders." {
				t.Errorf("deactivated node still answers: %+v, %v", r, err)
			}
		})
	}
}
