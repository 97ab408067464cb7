package messenger_test

import (
	"net/http"
	"testing"

	"github.com/koelvoice/koel/channels/channeltest"
	"github.com/koelvoice/koel/channels/platform"
)

// FuzzReceive drives signed bodies through the real handler, store and
// engine: never a panic, never a 5xx, and a 200 only for page events.
func FuzzReceive(f *testing.F) {
	f.Add([]byte(specBody))
	f.Add(event(textEvent("U", "m1", "hello")))
	f.Add([]byte(`{"object":"page","entry":[{"messaging":[{"postback":{"payload":"x"},"sender":{"id":"u"}}]}]}`))
	f.Add([]byte(`{"object":"page","entry":[{"messaging":[{"message":{"text":"\u0000"},"sender":{"id":"u"}}]}]}`))
	f.Add([]byte(`[]`))
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		h := http.Header{"X-Hub-Signature-256": {platform.SignMeta(appSecret, body)}}
		w := channeltest.Serve(fx.router, http.MethodPost, "/fb/bluebird1", body, h)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
	})
}
