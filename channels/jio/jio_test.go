package jio_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/channels/channeltest"
	"github.com/koelvoice/koel/channels/jio"
	"github.com/koelvoice/koel/ivr"
)

const (
	appSecret   = "secret123"
	accessToken = "jio-access-token"
	refundReply = "Refunds reach your account within five to seven working days after we receive the returned product."
)

// courierText is Courier's JioChat test message (spec/channels.md §4) with
// a question the demo FAQ answers.
const courierText = `{"ToUsername":"12121212121212","FromUserName":"1234","CreateTime":1518774424438,"MsgType":"text","MsgId":"123456","Content":"where is my refund"}`

func TestSignatureVector(t *testing.T) {
	if got := jio.Signature("secret123", "20180216094704", "nonce"); got != "c732109514cdbe8786b2752c029ee83b1620ca40" {
		t.Fatalf("Signature = %s", got)
	}
}

func newFixture(t testing.TB) (*channeltest.Stack, *channeltest.Platform, *mux.Router) {
	t.Helper()
	s := channeltest.NewStack(t)
	fake := channeltest.NewJio(t, accessToken)
	s.Connect(t, jio.Channel, "jio1", ivr.ConnectionSettings{Jio: ivr.JioSettings{AccessToken: accessToken, AppSecret: appSecret, BaseURL: fake.URL()}})
	r := mux.NewRouter()
	(&jio.Adapter{Pipeline: s.Pipeline}).Routes(r)
	s.Register(jio.Channel, jio.NewSender(s.HTTPSender()))
	return s, fake, r
}

const signedQuery = "?signature=c732109514cdbe8786b2752c029ee83b1620ca40&timestamp=20180216094704&nonce=nonce"

func TestVerification(t *testing.T) {
	_, _, r := newFixture(t)
	w := channeltest.Serve(r, http.MethodGet, "/jio/jio1"+signedQuery+"&echostr=SUCCESS", nil, nil)
	if w.Code != 200 || w.Body.String() != "SUCCESS" {
		t.Fatalf("verification: %d %q", w.Code, w.Body)
	}
	for _, q := range []string{
		"?signature=c732109514cdbe8786b2752c029ee83b1620ca41&timestamp=20180216094704&nonce=nonce&echostr=SUCCESS",
		"?signature=c732109514cdbe8786b2752c029ee83b1620ca40&timestamp=20180216094705&nonce=nonce&echostr=SUCCESS",
		"?echostr=SUCCESS",
	} {
		if w := channeltest.Serve(r, http.MethodGet, "/jio/jio1"+q, nil, nil); w.Code != 403 {
			t.Fatalf("%s: %d", q, w.Code)
		}
	}
}

func TestInboundAnsweredThroughSendAPI(t *testing.T) {
	s, fake, r := newFixture(t)
	for i := 0; i < 2; i++ {
		if w := channeltest.Serve(r, http.MethodPost, "/jio/jio1"+signedQuery, []byte(courierText), nil); w.Code != 200 {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	s.DeliverDue(t)
	s.DeliverDue(t)
	got := fake.Accepted()
	if len(got) != 1 {
		t.Fatalf("jio accepted %d, refused %d", len(got), len(fake.Refused()))
	}
	want := `{"msgtype":"text","touser":"1234","text":{"content":"` + refundReply + `"}}`
	if got[0].Path != "/custom/custom_send.action" || got[0].Header.Get("Authorization") != "Bearer "+accessToken || string(got[0].Body) != want {
		t.Fatalf("request %s %q\n got %s\nwant %s", got[0].Path, got[0].Header.Get("Authorization"), got[0].Body, want)
	}
}

func TestRefusedAndSkipped(t *testing.T) {
	s, _, r := newFixture(t)
	tests := []struct {
		name, query, body string
		code              int
	}{
		{"unsigned", "", courierText, 403},
		{"wrong signature", strings.Replace(signedQuery, "ca40", "ca41", 1), courierText, 403},
		{"not JSON", signedQuery, `{"MsgId":`, 400},
		{"neither MsgId nor Event", signedQuery, `{"FromUserName":"1234","MsgType":"text","Content":"hi"}`, 400},
		{"NUL in Content", signedQuery, strings.Replace(courierText, "where is my refund", `a\u0000b`, 1), 400},
		{"wrong bearer token", "", courierText, 403},
		{"subscribe event", signedQuery, `{"ToUsername":"1","FromUserName":"1234","CreateTime":1,"MsgType":"event","Event":"subscribe"}`, 200},
		{"image", signedQuery, `{"ToUsername":"1","FromUserName":"1234","CreateTime":1,"MsgType":"image","MsgId":"9","MediaId":"m"}`, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h http.Header
			if strings.HasPrefix(tt.name, "wrong bearer") {
				h = http.Header{"Authorization": {"Bearer nope"}}
			}
			if w := channeltest.Serve(r, http.MethodPost, "/jio/jio1"+tt.query, []byte(tt.body), h); w.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			if s.UserExists(t, jio.Channel, "1234") {
				t.Fatal("nothing should have been stored")
			}
		})
	}
}

func TestBearerTokenInsteadOfSignature(t *testing.T) {
	s, _, r := newFixture(t)
	if w := channeltest.Serve(r, http.MethodPost, "/jio/jio1", []byte(courierText), http.Header{"Authorization": {"Bearer " + accessToken}}); w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if !s.UserExists(t, jio.Channel, "1234") {
		t.Fatal("message not stored")
	}
}

func FuzzReceive(f *testing.F) {
	f.Add([]byte(courierText))
	f.Add([]byte(`{"MsgId":123,"FromUserName":"u","MsgType":"text","Content":"x"}`))
	f.Add([]byte(`{"Event":"subscribe"}`))
	_, _, r := newFixture(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		if w := channeltest.Serve(r, http.MethodPost, "/jio/jio1"+signedQuery, body, nil); w.Code >= 500 {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
	})
}
