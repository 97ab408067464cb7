package karix_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/channels/channeltest"
	"github.com/koelvoice/koel/channels/karix"
	"github.com/koelvoice/koel/ivr"
)

const (
	apiKey      = "karix-account-key"
	refundReply = "Refunds reach your account within five to seven working days after we receive the returned product."
)

const inbound = `{"uid":"kx-in-1","channel":"whatsapp","direction":"inbound","source":"+919822222222","destination":"+918000000000","content_type":"text","content":{"text":"where is my refund"},"created_time":"2026-12-02T10:00:00Z"}`

func newFixture(t testing.TB) (*channeltest.Stack, *channeltest.Platform, *mux.Router) {
	t.Helper()
	s := channeltest.NewStack(t)
	fake := channeltest.NewKarix(t, apiKey)
	s.Connect(t, karix.Channel, "kx1", ivr.ConnectionSettings{Karix: ivr.KarixSettings{APIKey: apiKey, BaseURL: fake.URL(), Sender: "+918000000000"}})
	r := mux.NewRouter()
	(&karix.Adapter{Pipeline: s.Pipeline}).Routes(r)
	s.Register(karix.Channel, karix.NewSender(s.HTTPSender()))
	return s, fake, r
}

func post(r http.Handler, auth, body string) int {
	h := http.Header{"Content-Type": {"application/json"}}
	if auth != "" {
		h.Set("Authorization", auth)
	}
	return channeltest.Serve(r, http.MethodPost, "/karix/kx1", []byte(body), h).Code
}

func TestInboundAnsweredThroughSendAPI(t *testing.T) {
	s, fake, r := newFixture(t)
	if code := post(r, "Bearer "+apiKey, inbound); code != 200 {
		t.Fatal(code)
	}
	if code := post(r, apiKey, `{"data":[`+inbound+`]}`); code != 200 { // a redelivery, wrapped
		t.Fatal(code)
	}
	s.DeliverDue(t)
	s.DeliverDue(t)
	got := fake.Accepted()
	if len(got) != 1 {
		t.Fatalf("karix accepted %d, refused %d", len(got), len(fake.Refused()))
	}
	want := `{"channel":"whatsapp","source":"+918000000000","destination":["+919822222222"],"content":{"text":"` + refundReply + `"}}`
	if got[0].Path != "/message/" || got[0].Header.Get("Authorization") != "Bearer "+apiKey || string(got[0].Body) != want {
		t.Fatalf("request %s %q\n got %s\nwant %s", got[0].Path, got[0].Header.Get("Authorization"), got[0].Body, want)
	}
}

func TestRefusedRequestsStoreNothing(t *testing.T) {
	s, _, r := newFixture(t)
	tests := []struct {
		name, auth, body string
		code             int
	}{
		{"no authorization", "", inbound, 401},
		{"wrong account key", "Bearer nope", inbound, 401},
		{"not JSON", "Bearer " + apiKey, `{"uid":`, 400},
		{"no uid", "Bearer " + apiKey, strings.Replace(inbound, `"uid":"kx-in-1",`, "", 1), 400},
		{"data of the wrong type", "Bearer " + apiKey, `{"data":"x"}`, 400},
		{"NUL in text", "Bearer " + apiKey, strings.Replace(inbound, "where is my refund", `a\u0000b`, 1), 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code := post(r, tt.auth, tt.body); code != tt.code {
				t.Fatalf("status %d, want %d", code, tt.code)
			}
			if s.UserExists(t, karix.Channel, "+919822222222") {
				t.Fatal("refused request stored a user")
			}
		})
	}
	outbound := strings.Replace(inbound, `"inbound"`, `"outbound"`, 1)
	if msgs, err := karix.Parse([]byte(outbound)); err != nil || len(msgs) != 0 {
		t.Fatalf("outbound echo parsed as %v, %v", msgs, err)
	}
}

func FuzzReceive(f *testing.F) {
	f.Add([]byte(inbound))
	f.Add([]byte(`{"data":[{"uid":"1","source":"2","content":{"text":"x"}}]}`))
	f.Add([]byte(`{"data":{"uid":"1"}}`))
	_, _, r := newFixture(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		if code := post(r, apiKey, string(body)); code >= 500 {
			t.Fatalf("status %d for %q", code, body)
		}
	})
}
