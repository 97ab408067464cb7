package webhook

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/koelvoice/koel/ivr/store/storetest"
)

// FuzzLogMessage runs the real engine with the real FAQ bot on a real
// SQLite store: any body gets 200 or a 4xx in the seed's error shape, never
// a 500 or a panic; a refused request stores nothing for its user, and an
// accepted one stores the text exactly as sent.
func FuzzLogMessage(f *testing.F) {
	for _, seed := range []string{
		`{"user":{"auth_id":"a"},"message_body":"hi","message_type":0,"business_id":1}`,
		`{"user":{"auth_id":"a"},"message_body":"hi","business_id":2}`,
		`{"user":{"auth_id":"a"},"message_body":"hi","business_id":3}`,
		`{"user":null,"message_body":"hi","business_id":1}`,
		`{"user":{"auth_id":""},"message_body":" ","business_id":1}`,
		`{"user":{"auth_id":"a"},"message_body":"hi","message_type":-1,"business_id":1}`,
		`{"user":{"auth_id":"a"},"message_body":"hi","business_id":1e99}`,
		`{"user":{"auth_id":"fresh"},"message_body":"hi\u0000there","business_id":1}`,
		`{"user":{"auth_id":"a\u0000"},"message_body":"hi","business_id":1}`,
		"{\"user\":{\"auth_id\":\"a\"},\"message_body\":\"caf\xe9\",\"business_id\":1}",
		`{"user":{"auth_id":"a"},"message_body":"\ud800","business_id":1}`,
		`{"business_id":1,"user":{"auth_id":"a","x":1}}`,
		`{`, `[]`, `null`, ``, "\xff",
	} {
		f.Add(seed)
	}
	e := newEnv(f, storetest.NewSQLite(f))
	f.Fuzz(func(t *testing.T, body string) {
		var req LogMessageRequest
		_ = json.Unmarshal([]byte(body), &req)
		var authID string
		if req.User != nil {
			authID = strings.TrimSpace(req.User.AuthID)
		}
		before := e.state(t, authID)
		w := e.post(PathLogMessage, body, nil)
		if w.Code == http.StatusOK {
			if !utf8.ValidString(body) {
				t.Fatalf("invalid UTF-8 accepted: %q", body)
			}
			var resp LogMessageResponse
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || req.MessageBody == nil || resp.MessageBody != *req.MessageBody {
				t.Fatalf("200 for %q answered %s", body, w.Body)
			}
			return
		}
		if w.Code < 400 || w.Code > 499 {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		errorMessage(t, w)
		if after := e.state(t, authID); !reflect.DeepEqual(before, after) {
			t.Fatalf("refused %q (%d %s) but the store changed:\nbefore %v\nafter  %v", body, w.Code, w.Body, before, after)
		}
	})
}
