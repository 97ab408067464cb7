package kookoo

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzAppRequest sends arbitrary query strings to the app: it must never
// panic, and must always answer either valid KooKoo XML or an empty body.
func FuzzAppRequest(f *testing.F) {
	for _, s := range []string{
		"event=NewCall", "event=NewCall&sid=1&cid=9704665032", "event=Record&sid=1&data=http://127.0.0.1:1/x.wav",
		"event=GotDTMF&sid=1&data=0%23", "event=Dial&sid=1&status=answered&data=-1", "event=Hangup&sid=1&process=dial",
		"event=Disconnect&sid=1", "sid=1", "event=Explode&sid=1", "event=Record&sid=1&data=hello", "sid=..%2F&event=NewCall",
		"event=Record&sid=1&data=" + strings.Repeat("a", 5000), "event=Hangup&sid=1&total_call_duration=x", "%zz",
	} {
		f.Add("demo", s)
	}
	f.Add("off", "event=NewCall&sid=2")
	f.Add("nope", "event=Record&sid=3")
	h := newHarness(f, harnessOptions{})
	setupRecordings(f, h)
	f.Fuzz(func(t *testing.T, identifier, query string) {
		if strings.ContainsAny(identifier, "/?#%") || strings.ContainsAny(query, "#") {
			return // not a request line a router would route here
		}
		req := httptest.NewRequest(http.MethodGet, "/kookoo/x", nil)
		req.URL.Path = "/kookoo/" + identifier
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		h.router.ServeHTTP(rec, req)
		body := rec.Body.String()
		if rec.Code == http.StatusNotFound && identifier == "" || rec.Code == http.StatusMovedPermanently {
			return // the router's own answers
		}
		if body == "" {
			return
		}
		resp, err := ParseResponse([]byte(body))
		if err != nil {
			t.Fatalf("%q %q: answer is not KooKoo XML: %v: %s", identifier, query, err, body)
		}
		if err := resp.Validate(); err != nil {
			t.Fatalf("%q %q: answer breaks the protocol: %v: %s", identifier, query, err, body)
		}
	})
}
