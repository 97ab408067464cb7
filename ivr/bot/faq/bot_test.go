package faq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot"
	"github.com/koelvoice/koel/ivr/demo/demofaq"
)

// fakeStore is an in-memory NodeSource and Importer with the store's
// ReplaceFAQ semantics.
type fakeStore struct {
	mu        sync.Mutex
	biz       map[int64]ivr.Business
	nodes     map[int64][]ivr.FAQNode
	listCalls int
	failList  error
	failSave  error
}

var (
	_ NodeSource = (*fakeStore)(nil)
	_ Importer   = (*fakeStore)(nil)
)

func newFakeStore(businesses ...ivr.Business) *fakeStore {
	s := &fakeStore{biz: map[int64]ivr.Business{}, nodes: map[int64][]ivr.FAQNode{}}
	for _, b := range businesses {
		s.biz[b.ID] = b
	}
	return s
}

var errNotFound = errors.New("fake: not found")

func (s *fakeStore) GetBusiness(_ context.Context, id int64) (ivr.Business, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.biz[id]
	if !ok {
		return ivr.Business{}, errNotFound
	}
	return b, nil
}

func (s *fakeStore) ListFAQ(_ context.Context, businessID int64, activeOnly bool) ([]ivr.FAQNode, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listCalls++
	if s.failList != nil {
		return nil, s.failList
	}
	var out []ivr.FAQNode
	for _, n := range s.nodes[businessID] {
		if n.Active || !activeOnly {
			out = append(out, n)
		}
	}
	return out, nil
}

func (s *fakeStore) ReplaceFAQ(_ context.Context, businessID int64, nodes []ivr.FAQNode) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failSave != nil {
		return 0, s.failSave
	}
	b, ok := s.biz[businessID]
	if !ok {
		return 0, errNotFound
	}
	old := s.nodes[businessID]
	for i := range old {
		old[i].Active = false
	}
	for _, n := range nodes {
		n.Active = true
		n.BusinessID = businessID
		if i := slices.IndexFunc(old, func(o ivr.FAQNode) bool { return o.Name == n.Name }); i >= 0 {
			n.ID = old[i].ID
			old[i] = n
			continue
		}
		n.ID = int64(len(old) + 1)
		old = append(old, n)
	}
	s.nodes[businessID] = old
	b.FAQVersion++
	s.biz[businessID] = b
	return b.FAQVersion, nil
}

func (s *fakeStore) lists() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listCalls
}

// demoStore returns a store holding business 1 with the demo FAQ imported.
func demoStore(t *testing.T, fallback string) *fakeStore {
	t.Helper()
	s := newFakeStore(ivr.Business{ID: 1, Name: "demo", FallbackMessage: fallback, Active: true})
	if _, err := Import(context.Background(), s, 1, bytes.NewReader(demofaq.CSV()), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBotReply(t *testing.T) {
	s := demoStore(t, "Sorry, I can help with orders, deliveries and payments.")
	b := New(s, Options{})
	tests := []struct {
		name string
		text string
		want bot.Response
	}{
		{
			name: "single message node",
			text: "I forgot my password",
			want: bot.Response{
				Messages: []bot.Message{{Text: "To reset your password, tap Forgot Password on the login page and follow the link we send to your email."}},
				Node:     "reset_password",
				Topic:    "reset password",
				// Both content words of the text are the node's.
				Support: 2, Words: 2,
			},
		},
		{
			name: "one message per <m> part",
			text: "where is your shop",
			want: bot.Response{
				Messages: []bot.Message{
					{Text: "Our main store is at 42 Residency Road, Bangalore."},
					{Text: "You can also find every store on our website under Store Locator."},
				},
				Node:  "store_location",
				Topic: "store location",
				// Both content words of the text are the node's.
				Support: 2, Words: 2,
			},
		},
		{
			name: "handoff node",
			text: "please let me speak to a human",
			want: bot.Response{
				Messages: []bot.Message{{Text: "Sure, let me connect you to one of our agents."}},
				Node:     "talk_to_agent",
				Topic:    "talk to agent",
				// Both content words of the text are the node's.
				Support: 2, Words: 2,
				Handoff: true,
			},
		},
		{
			name: "off topic falls back to the business message",
			text: "what is the capital of france",
			want: bot.Response{
				Messages: []bot.Message{{Text: "Sorry, I can help with orders, deliveries and payments."}},
				Fallback: true,
			},
		},
		{
			name: "whitespace falls back without matching",
			text: " \t\n",
			want: bot.Response{
				Messages: []bot.Message{{Text: "Sorry, I can help with orders, deliveries and payments."}},
				Fallback: true,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := b.Reply(context.Background(), bot.Request{BusinessID: 1, UserID: "u1", Text: tt.text})
			if err != nil {
				t.Fatalf("Reply: %v", err)
			}
			if got.Fallback {
				if got.Confidence >= DefaultThreshold {
					t.Errorf("fallback with confidence %.3f >= threshold", got.Confidence)
				}
			} else if got.Confidence < DefaultThreshold || got.Confidence > 1 {
				t.Errorf("confidence %.3f outside [threshold, 1]", got.Confidence)
			}
			got.Confidence = 0
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBotFallbackMessages(t *testing.T) {
	for _, tt := range []struct {
		name, business, def, want string
	}{
		{"business message wins", "Business says", "Default says", "Business says"},
		{"default when business has none", "", "Default says", "Default says"},
		{"builtin when neither", "  ", "", BuiltinFallback},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeStore(ivr.Business{ID: 7, FallbackMessage: tt.business})
			got, err := New(s, Options{DefaultFallback: tt.def}).Reply(context.Background(), bot.Request{BusinessID: 7, Text: "anything"})
			if err != nil {
				t.Fatal(err)
			}
			if !got.Fallback || len(got.Messages) != 1 || got.Messages[0].Text != tt.want {
				t.Errorf("got %+v, want fallback %q", got, tt.want)
			}
		})
	}
}

func TestBotPicksUpNewImport(t *testing.T) {
	s := demoStore(t, "")
	b := New(s, Options{})
	ctx := context.Background()
	ask := func(text string) bot.Response {
		t.Helper()
		r, err := b.Reply(ctx, bot.Request{BusinessID: 1, Text: text})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := ask("do you sell gift cards"); !r.Fallback {
		t.Fatalf("before import: got node %q, want fallback", r.Node)
	}
	ask("hello")
	if n := s.lists(); n != 1 {
		t.Fatalf("ListFAQ called %d times for one version, want 1 (cached)", n)
	}
	csv := "node_name,user_says,bot_says\ngift_cards,do you sell gift cards|gift card,Yes: gift cards of any value at every store.\n"
	if _, err := Import(ctx, s, 1, strings.NewReader(csv), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if r := ask("do you sell gift cards"); r.Node != "gift_cards" {
		t.Fatalf("after import: got %+v, want node gift_cards", r)
	}
	if r := ask("hello"); !r.Fallback {
		t.Errorf("greeting node is inactive after the import, got node %q", r.Node)
	}
	if n := s.lists(); n != 2 {
		t.Errorf("ListFAQ called %d times for two versions, want 2", n)
	}
}

func TestBotErrors(t *testing.T) {
	s := demoStore(t, "")
	ctx := context.Background()
	if _, err := New(s, Options{}).Reply(ctx, bot.Request{BusinessID: 99, Text: "hello"}); !errors.Is(err, bot.ErrUnavailable) || !errors.Is(err, errNotFound) {
		t.Errorf("unknown business: err = %v, want ErrUnavailable wrapping the store error", err)
	}
	boom := errors.New("disk on fire")
	s.failList = boom
	b := New(s, Options{})
	if _, err := b.Reply(ctx, bot.Request{BusinessID: 1, Text: "hello"}); !errors.Is(err, bot.ErrUnavailable) || !errors.Is(err, boom) {
		t.Errorf("ListFAQ failure: err = %v, want ErrUnavailable wrapping it", err)
	}
	if _, _, err := b.Phrases(ctx, 1); !errors.Is(err, bot.ErrUnavailable) {
		t.Errorf("Phrases: err = %v, want ErrUnavailable", err)
	}
}

func TestBotPhrases(t *testing.T) {
	s := demoStore(t, "")
	b := New(s, Options{MenuWords: []string{"Yes", "repeat", "hello"}})
	phrases, version, err := b.Phrases(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if version != 1 {
		t.Errorf("version = %d, want 1", version)
	}
	for _, want := range []string{"hello", "what are your opening hours", "i can not log in", "yes", "repeat", "do you accept upi"} {
		if !slices.Contains(phrases, want) {
			t.Errorf("phrases lack %q", want)
		}
	}
	seen := map[string]bool{}
	for _, p := range phrases {
		if seen[p] {
			t.Errorf("phrase %q repeated", p)
		}
		seen[p] = true
		if p != strings.ToLower(p) || strings.ContainsAny(p, ",.?!'") {
			t.Errorf("phrase %q is not normalised", p)
		}
	}
	userSays := 0
	for _, n := range loadDemoFAQ(t) {
		userSays += len(n.UserSays)
	}
	if got, want := len(phrases), userSays+2; got != want { // + yes, repeat ("hello" is a user says)
		t.Errorf("%d phrases, want %d", got, want)
	}
}

func TestBotCacheIsBounded(t *testing.T) {
	s := newFakeStore()
	for id := int64(1); id <= 5; id++ {
		s.biz[id] = ivr.Business{ID: id}
		s.nodes[id] = []ivr.FAQNode{{Name: "n", UserSays: []string{fmt.Sprintf("question %d", id)}, BotSays: []string{"a"}, Active: true}}
	}
	b := New(s, Options{CacheSize: 2})
	for id := int64(1); id <= 5; id++ {
		if _, err := b.Reply(context.Background(), bot.Request{BusinessID: id, Text: "question"}); err != nil {
			t.Fatal(err)
		}
	}
	b.mu.Lock()
	n, l := len(b.entries), b.lru.Len()
	b.mu.Unlock()
	if n != 2 || l != 2 {
		t.Fatalf("cache holds %d entries (list %d), want 2", n, l)
	}
	// Business 5 is cached, business 1 was evicted.
	before := s.lists()
	b.Reply(context.Background(), bot.Request{BusinessID: 5, Text: "question"})
	if s.lists() != before {
		t.Error("recently used business was reloaded")
	}
	b.Reply(context.Background(), bot.Request{BusinessID: 1, Text: "question"})
	if s.lists() != before+1 {
		t.Error("evicted business was not reloaded")
	}
}

func TestBotConcurrent(t *testing.T) {
	s := demoStore(t, "")
	b := New(s, Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				if g == 0 && i == 25 {
					csv := "node_name,user_says,bot_says\nhours,when are you open,Nine to nine.\n"
					if _, err := Import(context.Background(), s, 1, strings.NewReader(csv), ImportOptions{}); err != nil {
						errs <- err
						return
					}
				}
				if _, err := b.Reply(context.Background(), bot.Request{BusinessID: 1, Text: "when are you open"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	r, err := b.Reply(context.Background(), bot.Request{BusinessID: 1, Text: "when are you open"})
	if err != nil || r.Node != "hours" {
		t.Fatalf("after concurrent import: %+v, %v; want node hours", r, err)
	}
}

func TestTopicTitle(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"delivery_charges", "delivery charges"},
		{"Delivery-Charges", "delivery charges"},
		{"hours", "hours"},
		{"  a__b  ", "a b"},
		{"", ""},
	} {
		if got := TopicTitle(tc.in); got != tc.want {
			t.Errorf("TopicTitle(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestBotVoiceAlternatives(t *testing.T) {
	s := newFakeStore(ivr.Business{ID: 1})
	s.nodes[1] = []ivr.FAQNode{
		{Name: "reset_password", UserSays: []string{"reset my password", "i forgot my password"}, BotSays: []string{"Tap forgot."}, Active: true},
		{Name: "refund_status", UserSays: []string{"where is my refund"}, BotSays: []string{"Soon."}, Active: true},
	}
	b := New(s, Options{})
	req := bot.Request{BusinessID: 1, Text: "where is my refund", Voice: true, Alternatives: []bot.Alternative{
		{Text: "where is my refund", Weight: 0.4}, {Text: "i forgot my password", Weight: 0.35}, {Text: "reset my password", Weight: 0.25},
	}}
	r, err := b.Reply(context.Background(), req)
	if err != nil || r.Node != "reset_password" || r.Topic != "reset password" {
		t.Fatalf("voice with alternatives: %+v, %v", r, err)
	}
	// Text requests, and voice requests with one hypothesis, use Text.
	req.Voice = false
	if r, _ := b.Reply(context.Background(), req); r.Node != "refund_status" {
		t.Errorf("text request answered %q", r.Node)
	}
	req.Voice, req.Alternatives = true, req.Alternatives[:1]
	if r, _ := b.Reply(context.Background(), req); r.Node != "refund_status" {
		t.Errorf("one alternative answered %q", r.Node)
	}
}
