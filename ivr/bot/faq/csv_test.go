package faq

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/koelvoice/koel/ivr"
)

func TestParseCSV(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []ivr.FAQNode
	}{
		{
			name: "seed format",
			in:   "node_name,user_says,bot_says\ngreeting,hello|hi,Hello!<m>How can I help?\n",
			want: []ivr.FAQNode{{Name: "greeting", UserSays: []string{"hello", "hi"}, BotSays: []string{"Hello!", "How can I help?"}, Active: true}},
		},
		{
			name: "quoted fields with commas, quotes and newlines",
			in:   "node_name,user_says,bot_says\r\nhours,\"when are you open, today|hours\",\"We say \"\"hi\"\".\nBye.\"\r\n",
			want: []ivr.FAQNode{{Name: "hours", UserSays: []string{"when are you open, today", "hours"}, BotSays: []string{"We say \"hi\".\nBye."}, Active: true}},
		},
		{
			name: "byte order mark, reordered and renamed columns, spaces, blanks dropped",
			in:   "\ufeffAnswer(Bot Says),Question(User Says),Node Name\n  A <M> B <m>  ,  x | | y |x| X ,  n1 \n",
			want: []ivr.FAQNode{{Name: "n1", UserSays: []string{"x", "y"}, BotSays: []string{"A", "B"}, Active: true}},
		},
		{
			name: "blank lines are skipped",
			in:   "node_name,user_says,bot_says\n\na,b,c\n\nd,e,f",
			want: []ivr.FAQNode{
				{Name: "a", UserSays: []string{"b"}, BotSays: []string{"c"}, Active: true},
				{Name: "d", UserSays: []string{"e"}, BotSays: []string{"f"}, Active: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCSV(strings.NewReader(tt.in), 0)
			if err != nil {
				t.Fatalf("ParseCSV: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("nodes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseCSVErrors(t *testing.T) {
	long := strings.Repeat("x", MaxNameBytes+1)
	tests := []struct {
		name string
		in   string
		want []RowError
	}{
		{"empty file", "", []RowError{{0, "file is empty: a header node_name,user_says,bot_says is required"}}},
		{"header only", "node_name,user_says,bot_says\n", []RowError{{0, "no nodes: the file has a header but no rows"}}},
		{"no header", "greeting,hello,Hi\n", []RowError{{1, `header: unknown column "greeting" (want node_name,user_says,bot_says)`}}},
		{"missing column", "node_name,user_says\na,b\n", []RowError{{1, "header: missing column bot_says (want node_name,user_says,bot_says)"}}},
		{"repeated column", "node_name,user_says,bot_says,answer\n", []RowError{{1, `header: column "answer" appears twice`}}},
		{
			"every bad row is reported with its line",
			"node_name,user_says,bot_says\n" +
				"ok,hi,Hello\n" + // line 2
				",hi,Hello\n" + // line 3
				"a, | ,Hello\n" + // line 4
				"b,hi, <m> \n" + // line 5
				"c,hi\n" + // line 6
				"\"multi\nline\",hi,\n" + // lines 7-8
				"ok,again,Hello\n" + // line 9
				long + ",hi,Hello\n", // line 10
			[]RowError{
				{3, "node_name is empty"},
				{4, "user_says is empty"},
				{5, "bot_says is empty"},
				{6, "has 2 fields, want 3"},
				{7, "node_name contains a control character"},
				{7, "bot_says is empty"},
				{9, `node_name "ok" repeats line 2`},
				{10, "node_name is longer than 128 bytes"},
			},
		},
		{"csv syntax error stops the scan", "node_name,user_says,bot_says\na,b,c\nd,\"e,f\n", []RowError{{3, "csv syntax: extraneous or missing \" in quoted-field"}}},
		{"invalid utf-8", "node_name,user_says,bot_says\na,b,c\nd,\xff,f\n", []RowError{{3, "text is not valid UTF-8"}}},
		{"too many user says", "node_name,user_says,bot_says\na," + manyPhrases(MaxUserSays+1) + ",c\n",
			[]RowError{{2, "user_says has 201 phrases, at most 200 allowed"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nodes, err := ParseCSV(strings.NewReader(tt.in), 0)
			if nodes != nil {
				t.Errorf("nodes = %v, want nil on error", nodes)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			if !errors.Is(err, ErrInvalidCSV) {
				t.Errorf("error does not wrap ErrInvalidCSV")
			}
			if diff := cmp.Diff(tt.want, pe.Rows); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseCSVTooLarge(t *testing.T) {
	in := "node_name,user_says,bot_says\na,b,c\n"
	if _, err := ParseCSV(strings.NewReader(in), int64(len(in))); err != nil {
		t.Fatalf("input of exactly maxBytes: %v", err)
	}
	_, err := ParseCSV(strings.NewReader(in), int64(len(in)-1))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestParseCSVTooManyRows(t *testing.T) {
	var b strings.Builder
	b.WriteString("node_name,user_says,bot_says\n")
	for i := range MaxRows + 1 {
		b.WriteString("n")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(strconv.Itoa(i))
		b.WriteString(",q,a\n")
	}
	_, err := ParseCSV(strings.NewReader(b.String()), 0)
	var pe *ParseError
	if !errors.As(err, &pe) || len(pe.Rows) != 1 || pe.Rows[0].Line != MaxRows+2 {
		t.Fatalf("err = %v, want one row error at line %d", err, MaxRows+2)
	}
}

// manyPhrases returns n distinct user-says joined by "|".
func manyPhrases(n int) string {
	p := make([]string, n)
	for i := range p {
		p[i] = "q" + strconv.Itoa(i)
	}
	return strings.Join(p, UserSaysSeparator)
}

func TestParseErrorMessage(t *testing.T) {
	e := &ParseError{Rows: []RowError{{0, "a"}, {2, "b"}, {3, "c"}, {4, "d"}, {5, "e"}, {6, "f"}, {7, "g"}}}
	want := "faq: invalid csv: 7 problems; a; line 2: b; line 3: c; line 4: d; line 5: e; and 2 more"
	if got := e.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := e.Messages(); len(got) != 7 || got[1] != "line 2: b" {
		t.Errorf("Messages() = %q", got)
	}
}

func TestParseDemoFAQ(t *testing.T) {
	nodes := loadDemoFAQ(t)
	if len(nodes) != 21 {
		t.Fatalf("demo FAQ has %d nodes, want 21", len(nodes))
	}
	store := nodes[2]
	want := ivr.FAQNode{
		Name:     "store_location",
		UserSays: []string{"where is your store", "what is your address", "where are you located", "find a store near me", "nearest store"},
		BotSays:  []string{"Our main store is at 42 Residency Road, Bangalore.", "You can also find every store on our website under Store Locator."},
		Active:   true,
	}
	if diff := cmp.Diff(want, store); diff != "" {
		t.Errorf("store_location (-want +got):\n%s", diff)
	}
}

// FuzzParseCSV checks that any input either parses into valid nodes within
// the limits or fails with a *ParseError or ErrTooLarge, never panicking.
func FuzzParseCSV(f *testing.F) {
	f.Add("node_name,user_says,bot_says\ngreeting,hello|hi,Hello!<m>Bye\n")
	f.Add("node_name,user_says,bot_says\n\"a\"\"b\",\"x|y\",\"z<M>w\"\n")
	f.Add("\ufeffanswer,question,node\nA,B,C\n")
	f.Add("node_name,user_says,bot_says\na,b\n")
	f.Add("node_name,user_says,bot_says\na,\"b,c\n")
	f.Add("node_name,user_says,bot_says\na,b,c\na,b,c\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		nodes, err := ParseCSV(strings.NewReader(in), 1<<16)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			if pe != nil && len(pe.Rows) == 0 {
				t.Fatal("ParseError without rows")
			}
			return
		}
		if len(nodes) == 0 {
			t.Fatal("success without nodes")
		}
		names := map[string]bool{}
		for _, n := range nodes {
			if n.Name == "" || n.Name != strings.TrimSpace(n.Name) || len(n.Name) > MaxNameBytes || names[n.Name] {
				t.Fatalf("bad node name %q", n.Name)
			}
			names[n.Name] = true
			if len(n.UserSays) == 0 || len(n.BotSays) == 0 || !n.Active {
				t.Fatalf("incomplete node %+v", n)
			}
			for _, u := range n.UserSays {
				if u == "" || strings.Contains(u, UserSaysSeparator) {
					t.Fatalf("bad user says %q", u)
				}
			}
			for _, b := range n.BotSays {
				if b == "" || strings.Contains(strings.ToLower(b), BotSaysSeparator) {
					t.Fatalf("bad bot says %q", b)
				}
			}
		}
	})
}
