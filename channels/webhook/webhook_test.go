package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/store"
)

func logBody(authID, text string, businessID int64) string {
	b, err := json.Marshal(map[string]any{
		"user": map[string]string{"auth_id": authID}, "message_body": text, "message_type": 0, "business_id": businessID,
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func registerBody(authID string, businessID int64) string {
	b, err := json.Marshal(map[string]any{"user": map[string]string{"auth_id": authID}, "business_id": businessID})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestLogMessageErrors: every refused request answers its status with the
// seed's error body and stores nothing — no user, no conversation, no
// message, no delivery — on both backends.
func TestLogMessageErrors(t *testing.T) {
	cases := []struct {
		name   string
		path   string
		body   string
		hdr    map[string]string
		status int
		msg    string // substring of error_message
	}{
		{"NUL in message_body", PathLogMessage, `{"user":{"auth_id":"fresh"},"message_body":"hi\u0000there","message_type":0,"business_id":1}`, nil, 400, "message_body contains a NUL byte"},
		{"NUL in message_body of a known user", PathLogMessage, `{"user":{"auth_id":"known"},"message_body":"\u0000","business_id":1}`, nil, 400, "message_body contains a NUL byte"},
		{"NUL in auth_id", PathLogMessage, `{"user":{"auth_id":"fr\u0000esh"},"message_body":"hi","business_id":1}`, nil, 400, "auth_id contains a NUL byte"},
		{"invalid UTF-8 in message_body", PathLogMessage, "{\"user\":{\"auth_id\":\"fresh\"},\"message_body\":\"caf\xe9\",\"business_id\":1}", nil, 400, "not valid UTF-8"},
		{"lone surrogate escape in message_body", PathLogMessage, `{"user":{"auth_id":"fresh"},"message_body":"hi \ud800","business_id":1}`, nil, 400, "surrogate"},
		{"invalid UTF-8 in auth_id", PathLogMessage, "{\"user\":{\"auth_id\":\"\xff\xfe\"},\"message_body\":\"hi\",\"business_id\":1}", nil, 400, "not valid UTF-8"},
		{"missing message_body", PathLogMessage, `{"user":{"auth_id":"fresh"},"business_id":1}`, nil, 400, "message_body missing"},
		{"blank message_body", PathLogMessage, logBody("fresh", " \t\n", 1), nil, 400, "message_body missing"},
		{"oversized message_body", PathLogMessage, logBody("fresh", strings.Repeat("a", ivr.MaxTextBytes+1), 1), nil, 413, "longer than"},
		{"oversized body", PathLogMessage, logBody("fresh", strings.Repeat("a", MaxBody), 1), nil, 413, "larger than"},
		{"missing auth_id", PathLogMessage, `{"user":{},"message_body":"hi","business_id":1}`, nil, 400, "auth_id missing"},
		{"long auth_id", PathLogMessage, logBody(strings.Repeat("x", MaxAuthIDBytes+1), "hi", 1), nil, 400, "auth_id is longer than"},
		{"missing business_id", PathLogMessage, `{"user":{"auth_id":"fresh"},"message_body":"hi"}`, nil, 400, "business_id missing"},
		{"message_type 1", PathLogMessage, `{"user":{"auth_id":"fresh"},"message_body":"hi","message_type":1,"business_id":1}`, nil, 400, "message_type"},
		{"unknown field", PathLogMessage, `{"user":{"auth_id":"fresh"},"message_body":"hi","business_id":1,"x":1}`, nil, 400, "unknown field"},
		{"two objects", PathLogMessage, logBody("fresh", "hi", 1) + `{}`, nil, 400, "single JSON object"},
		{"malformed JSON", PathLogMessage, `{"user":`, nil, 400, "malformed JSON"},
		{"empty body", PathLogMessage, ``, nil, 400, "empty"},
		{"mistyped business_id", PathLogMessage, `{"user":{"auth_id":"fresh"},"message_body":"hi","business_id":"1"}`, nil, 400, "business_id"},
		{"content type jsonp", PathLogMessage, logBody("fresh", "hi", 1), map[string]string{"Content-Type": "application/jsonp"}, 415, "application/json"},
		{"charset utf-16", PathLogMessage, logBody("fresh", "hi", 1), map[string]string{"Content-Type": "application/json; charset=utf-16"}, 415, "utf-8"},
		{"content type text/plain", PathLogMessage, logBody("fresh", "hi", 1), map[string]string{"Content-Type": "text/plain"}, 415, "application/json"},
		{"malformed content type", PathLogMessage, logBody("fresh", "hi", 1), map[string]string{"Content-Type": "application/json; charset"}, 415, "application/json"},
		{"no authorization", PathLogMessage, logBody("fresh", "hi", 1), map[string]string{"Authorization": ""}, 401, "invalid authorization details"},
		{"wrong token", PathLogMessage, logBody("fresh", "hi", 1), map[string]string{"Authorization": "Bearer nope"}, 401, "invalid authorization details"},
		{"basic auth", PathLogMessage, logBody("fresh", "hi", 1), map[string]string{"Authorization": "Basic dG9rOg=="}, 401, "invalid authorization details"},
		{"no client-id", PathLogMessage, logBody("fresh", "hi", 1), map[string]string{"client-id": ""}, 401, "invalid authorization details"},
		{"wrong client-id", PathLogMessage, logBody("fresh", "hi", 1), map[string]string{"client-id": "other"}, 401, "invalid authorization details"},
		{"unknown business", PathLogMessage, logBody("fresh", "hi", 99), nil, 401, "invalid authorization details"},
		{"unregistered user", PathLogMessage, logBody("fresh", "hi", closedBusinessID), nil, 403, "user is not registered"},
		{"inactive connection", PathLogMessage, logBody("fresh", "hi", inactiveBusinessID), nil, 404, "not active"},

		{"register: NUL in auth_id", PathRegisterUser, `{"user":{"auth_id":"fresh\u0000"},"business_id":2}`, nil, 400, "auth_id contains a NUL byte"},
		{"register: invalid UTF-8 auth_id", PathRegisterUser, "{\"user\":{\"auth_id\":\"fresh\xc3\"},\"business_id\":2}", nil, 400, "not valid UTF-8"},
		{"register: missing auth_id", PathRegisterUser, `{"business_id":2}`, nil, 400, "auth_id missing"},
		{"register: wrong token", PathRegisterUser, registerBody("fresh", closedBusinessID), map[string]string{"Authorization": "Bearer nope"}, 401, "invalid authorization details"},
		{"register: inactive connection", PathRegisterUser, registerBody("fresh", inactiveBusinessID), nil, 404, "not active"},
		{"register: unknown field", PathRegisterUser, `{"user":{"auth_id":"fresh"},"business_id":2,"message_body":"x"}`, nil, 400, "unknown field"},
	}
	backends(t, func(t *testing.T, open func(t testing.TB) store.Store) {
		e := newEnv(t, open(t))
		// "known" has talked before: refusals must not add to its transcript.
		if w := e.post(PathLogMessage, logBody("known", "where is my order", 1), nil); w.Code != http.StatusOK {
			t.Fatalf("setup message: %d %s", w.Code, w.Body)
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := e.state(t, "fresh", "known", "fr\x00esh", "fresh\x00")
				w := e.post(tc.path, tc.body, tc.hdr)
				if w.Code != tc.status {
					t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
				}
				if msg := errorMessage(t, w); !strings.Contains(msg, tc.msg) {
					t.Fatalf("error_message %q does not say %q", msg, tc.msg)
				}
				if after := e.state(t, "fresh", "known", "fr\x00esh", "fresh\x00"); !reflect.DeepEqual(before, after) {
					t.Fatalf("a refused request changed the store:\nbefore %v\nafter  %v", before, after)
				}
			})
		}
	})
}

// TestLogMessageStoresAndAnswers: a valid message gets the seed's 200 body,
// and its turn (message, reply, delivery) is stored.
func TestLogMessageStoresAndAnswers(t *testing.T) {
	backends(t, func(t *testing.T, open func(t testing.TB) store.Store) {
		e := newEnv(t, open(t))
		w := e.post(PathLogMessage, logBody("ravi", "how do I return a product", 1), map[string]string{"Content-Type": "application/json; charset=UTF-8"})
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		var resp map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		if len(resp) != 4 || resp["message_body"] != "how do I return a product" || resp["message_type"] != float64(0) {
			t.Fatalf("response %s, want message_id, message_body, created_at, message_type", w.Body)
		}
		if id, _ := resp["message_id"].(float64); id <= 0 {
			t.Fatalf("message_id %v", resp["message_id"])
		}
		got := e.state(t, "ravi")
		want := storedState{Users: map[string]string{"1/ravi": "registered"}, Messages: map[string]int{"1/ravi": 2}, Outbox: 1}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("stored %v, want %v", got, want)
		}
	})
}

// TestRegisterUser: register_user lets an unregistered user talk on a
// business that requires registration, and registers exactly that user.
func TestRegisterUser(t *testing.T) {
	backends(t, func(t *testing.T, open func(t testing.TB) store.Store) {
		e := newEnv(t, open(t))
		if w := e.post(PathLogMessage, logBody("asha", "hello", closedBusinessID), nil); w.Code != http.StatusForbidden {
			t.Fatalf("before registering: %d %s", w.Code, w.Body)
		}
		w := e.post(PathRegisterUser, registerBody(" asha ", closedBusinessID), nil)
		if w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != `{"success":true}` {
			t.Fatalf("register: %d %s", w.Code, w.Body)
		}
		if w := e.post(PathLogMessage, logBody("asha", "what are your store hours", closedBusinessID), nil); w.Code != http.StatusOK {
			t.Fatalf("after registering: %d %s", w.Code, w.Body)
		}
		got := e.state(t, "asha")
		want := storedState{Users: map[string]string{"2/asha": "registered"}, Messages: map[string]int{"2/asha": 2}, Outbox: 1}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("stored %v, want %v", got, want)
		}
	})
}

// TestIdempotencyKeyAnswersRetriesOnce: a client's retry with the same
// Idempotency-Key gets the first answer byte for byte, and the turn is
// stored and delivered once — also when the copies race; the same key
// with another text is refused; another user's same key is its own.
func TestIdempotencyKeyAnswersRetriesOnce(t *testing.T) {
	backends(t, func(t *testing.T, open func(t testing.TB) store.Store) {
		e := newEnv(t, open(t))
		key := map[string]string{"Idempotency-Key": "order-42-attempt"}
		first := e.post(PathLogMessage, logBody("meena", "where is my order", 1), key)
		if first.Code != http.StatusOK || first.Header().Get(HeaderIdempotentReplayed) != "" {
			t.Fatalf("first: %d %s", first.Code, first.Body)
		}
		retry := e.post(PathLogMessage, logBody("meena", "where is my order", 1), key)
		if retry.Code != http.StatusOK || retry.Body.String() != first.Body.String() || retry.Header().Get(HeaderIdempotentReplayed) != "true" {
			t.Fatalf("retry: %d %s (replayed %q), first %s", retry.Code, retry.Body, retry.Header().Get(HeaderIdempotentReplayed), first.Body)
		}
		want := storedState{Users: map[string]string{"1/meena": "registered"}, Messages: map[string]int{"1/meena": 2}, Outbox: 1}
		if got := e.state(t, "meena"); !reflect.DeepEqual(got, want) {
			t.Fatalf("after a retry: stored %v, want %v", got, want)
		}

		if w := e.post(PathLogMessage, logBody("meena", "cancel my order", 1), key); w.Code != http.StatusUnprocessableEntity || !strings.Contains(errorMessage(t, w), "Idempotency-Key") {
			t.Fatalf("reused key with another text: %d %s", w.Code, w.Body)
		}
		if w := e.post(PathLogMessage, logBody("meena", "hi", 1), map[string]string{"Idempotency-Key": "k\x7f\x00"}); w.Code != http.StatusBadRequest {
			t.Fatalf("NUL in the key: %d %s", w.Code, w.Body)
		}
		if w := e.post(PathLogMessage, logBody("meena", "hi", 1), map[string]string{"Idempotency-Key": strings.Repeat("k", MaxIdempotencyKeyBytes+1)}); w.Code != http.StatusBadRequest {
			t.Fatalf("long key: %d %s", w.Code, w.Body)
		}
		if got := e.state(t, "meena"); !reflect.DeepEqual(got, want) {
			t.Fatalf("refused requests stored something: %v", got)
		}

		// Another user may use the same key for their own message.
		if w := e.post(PathLogMessage, logBody("vikram", "where is my order", 1), key); w.Code != http.StatusOK || w.Header().Get(HeaderIdempotentReplayed) != "" {
			t.Fatalf("other user, same key: %d %s", w.Code, w.Body)
		}

		// Racing copies: every copy gets the same answer, one turn is stored.
		const copies = 8
		bodies := make(chan string, copies)
		var wg sync.WaitGroup
		for range copies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := e.post(PathLogMessage, logBody("kiran", "what are your store hours", 1), map[string]string{"Idempotency-Key": "race"})
				bodies <- fmt.Sprint(w.Code, " ", w.Body.String())
			}()
		}
		wg.Wait()
		close(bodies)
		var answers []string
		for b := range bodies {
			answers = append(answers, b)
		}
		for _, a := range answers {
			if a != answers[0] || !strings.HasPrefix(a, "200 ") {
				t.Fatalf("racing copies got different answers: %q", answers)
			}
		}
		if got := e.state(t, "kiran"); got.Messages["1/kiran"] != 2 || got.Outbox != 3 {
			t.Fatalf("racing copies stored %v, want one turn and one delivery", got)
		}
	})
}
