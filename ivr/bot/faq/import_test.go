package faq

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/koelvoice/koel/ivr"
)

func importFile(t *testing.T, dst Importer, businessID int64, path string) (ImportResult, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Import(context.Background(), dst, businessID, f, ImportOptions{})
}

func TestImport(t *testing.T) {
	s := newFakeStore(ivr.Business{ID: 1})
	var calls [][2]int
	res, err := Import(context.Background(), s, 1, strings.NewReader("node_name,user_says,bot_says\na,b,c\nd,e,f\n"),
		ImportOptions{Progress: func(done, total int) { calls = append(calls, [2]int{done, total}) }})
	if err != nil {
		t.Fatal(err)
	}
	if res != (ImportResult{Nodes: 2, Version: 1}) {
		t.Errorf("result = %+v, want 2 nodes, version 1", res)
	}
	if len(calls) != 2 || calls[0] != [2]int{0, 2} || calls[1] != [2]int{2, 2} {
		t.Errorf("progress calls = %v, want [[0 2] [2 2]]", calls)
	}
	nodes, _ := s.ListFAQ(context.Background(), 1, true)
	if len(nodes) != 2 || nodes[0].BusinessID != 1 {
		t.Errorf("stored nodes = %+v", nodes)
	}
}

func TestImportProgressLargeFile(t *testing.T) {
	const rows = 1000
	var b strings.Builder
	b.WriteString("node_name,user_says,bot_says\n")
	for i := range rows {
		b.WriteString("n" + strconv.Itoa(i) + ",\"q|r\nstill q\",\"a<m>b\"\n")
	}
	s := newFakeStore(ivr.Business{ID: 3})
	last, calls := [2]int{-1, -1}, 0
	_, err := Import(context.Background(), s, 3, strings.NewReader(b.String()), ImportOptions{Progress: func(done, total int) {
		calls++
		if total != rows || done < last[0] || done > total {
			t.Errorf("progress (%d, %d) after (%d, %d)", done, total, last[0], last[1])
		}
		last = [2]int{done, total}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if last != [2]int{rows, rows} || calls < 4 {
		t.Errorf("last progress %v after %d calls, want [%d %d] after several", last, calls, rows, rows)
	}
}

func TestImportFailureKeepsPreviousFAQ(t *testing.T) {
	s := demoStore(t, "")
	before, _ := s.ListFAQ(context.Background(), 1, true)
	tests := []struct {
		name    string
		in      string
		opts    ImportOptions
		saveErr error
		check   func(error) bool
	}{
		{"bad row", "node_name,user_says,bot_says\na,b,c\n,x,y\n", ImportOptions{}, nil,
			func(err error) bool { var pe *ParseError; return errors.As(err, &pe) && pe.Rows[0].Line == 3 }},
		{"too large", "node_name,user_says,bot_says\na,b,c\n", ImportOptions{MaxBytes: 10}, nil,
			func(err error) bool { return errors.Is(err, ErrTooLarge) }},
		{"store fails", "node_name,user_says,bot_says\na,b,c\n", ImportOptions{}, errors.New("tx aborted"),
			func(err error) bool { return err != nil && strings.Contains(err.Error(), "tx aborted") }},
		{"negative limit", "node_name,user_says,bot_says\na,b,c\n", ImportOptions{MaxBytes: -1}, nil,
			func(err error) bool { return err != nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.failSave = tt.saveErr
			defer func() { s.failSave = nil }()
			progressed := false
			tt.opts.Progress = func(done, total int) {
				if done == total && total > 0 {
					progressed = true
				}
			}
			_, err := Import(context.Background(), s, 1, strings.NewReader(tt.in), tt.opts)
			if !tt.check(err) {
				t.Fatalf("unexpected error %v", err)
			}
			if progressed {
				t.Error("progress reported completion of a failed import")
			}
			after, _ := s.ListFAQ(context.Background(), 1, true)
			if len(after) != len(before) {
				t.Errorf("%d active nodes after failed import, want %d", len(after), len(before))
			}
			if b, _ := s.GetBusiness(context.Background(), 1); b.FAQVersion != 1 {
				t.Errorf("FAQVersion = %d after failed import, want 1", b.FAQVersion)
			}
		})
	}
}

func TestImportCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := newFakeStore(ivr.Business{ID: 1})
	if _, err := Import(ctx, s, 1, strings.NewReader("node_name,user_says,bot_says\na,b,c\n"), ImportOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
