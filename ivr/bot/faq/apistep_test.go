package faq_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/outbox"
)

const apiSecret = "s3cr3t-order-token"

// orderAPI is a business's order API: GET /orders/{id} with a bearer token.
func orderAPI(t *testing.T) *httptest.Server {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+apiSecret {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		id := strings.TrimPrefix(r.URL.EscapedPath(), "/orders/")
		switch id {
		case "1042":
			if r.Method == http.MethodPost {
				var body struct {
					OrderID string `json:"order_id"`
				}
				if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.OrderID != "1042" {
					http.Error(w, "bad body", 400)
					return
				}
			}
			_, _ = io.WriteString(w, `{"order":{"id":"1042","status":"out for delivery","eta":"today 6 pm"}}`)
		case "5000":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "6000":
			_, _ = io.WriteString(w, `<html>not json</html>`)
		case "7000":
			<-r.Context().Done() // never answers
		default:
			http.Error(w, `{"error":"no such order"}`, http.StatusNotFound)
		}
	}))
	t.Cleanup(ts.Close)
	return ts
}

func TestAPIStepOutcomes(t *testing.T) {
	ts := orderAPI(t)
	var logs bytes.Buffer
	c := &faq.APICaller{
		Client: faq.NewAPIClient(outbox.DialPolicy{AllowLoopback: true}.Dialer()),
		Getenv: func(k string) string {
			if k == "SHOP_API_TOKEN" {
				return apiSecret
			}
			return ""
		},
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	step := faq.APIStep{
		Method:  "GET",
		URL:     ts.URL + "/orders/{{.value}}",
		Headers: map[string]string{"Authorization": "Bearer ${SHOP_API_TOKEN}"},
		Reply:   "Your order {{.order.id}} is {{.order.status}}, expected {{.order.eta}}.",
		Timeout: 300 * time.Millisecond,
	}
	post := step
	post.Method, post.Body = "POST", `{"order_id": {{json .value}}}`
	noSecret := step
	noSecret.Headers = map[string]string{"Authorization": "Bearer ${UNSET_TOKEN}"}
	cases := []struct {
		name    string
		step    faq.APIStep
		value   string
		outcome faq.APIOutcome
		reply   string
	}{
		{"found", step, "1042", faq.APIAnswered, "Your order 1042 is out for delivery, expected today 6 pm."},
		{"found by POST with a JSON body", post, " 1042 ", faq.APIAnswered, "Your order 1042 is out for delivery"},
		{"unknown order is a 4xx", step, "9999", faq.APINotFound, faq.DefaultNotFound},
		{"a path in the value is not an order", step, "../admin", faq.APINotFound, faq.DefaultNotFound},
		{"5xx is the break message", step, "5000", faq.APIFailed, ""},
		{"garbage answer", step, "6000", faq.APIFailed, ""},
		{"never answers", step, "7000", faq.APIFailed, ""},
		{"secret not in the environment", noSecret, "1042", faq.APIFailed, ""},
		{"empty value", step, "  ", faq.APIFailed, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			reply, outcome := c.Call(context.Background(), tc.step, tc.value)
			if outcome != tc.outcome || !strings.HasPrefix(reply, tc.reply) || (tc.reply == "" && reply != "") {
				t.Fatalf("got %q %q, want %q %q", outcome, reply, tc.outcome, tc.reply)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("took %v: the step's timeout did not hold", took)
			}
		})
	}
	if strings.Contains(logs.String(), apiSecret) {
		t.Fatalf("the log holds the secret:\n%s", logs.String())
	}
}

// TestAPIStepDeadlineInsideBotTimeout: a step whose own timeout is longer
// than what the caller's deadline leaves gives up inside that deadline.
func TestAPIStepDeadlineInsideBotTimeout(t *testing.T) {
	ts := orderAPI(t)
	c := &faq.APICaller{Client: faq.NewAPIClient(outbox.DialPolicy{AllowLoopback: true}.Dialer()), Getenv: func(string) string { return apiSecret }}
	step := faq.APIStep{Method: "GET", URL: ts.URL + "/orders/{{.value}}", Headers: map[string]string{"Authorization": "Bearer ${T}"},
		Reply: "{{.order.status}}", Timeout: time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	if _, outcome := c.Call(ctx, step, "7000"); outcome != faq.APIFailed {
		t.Fatalf("outcome %q", outcome)
	}
	if ctx.Err() != nil {
		t.Fatal("the step used up the whole bot deadline")
	}
}

// TestAPIStepRefusesKoelsOwnNetwork: with the production policy a step
// aimed at loopback is refused when connecting.
func TestAPIStepRefusesKoelsOwnNetwork(t *testing.T) {
	ts := orderAPI(t)
	client := faq.NewAPIClient(outbox.DialPolicy{}.Dialer())
	resp, err := client.Get(ts.URL + "/orders/1042")
	if err == nil {
		resp.Body.Close()
		t.Fatal("loopback reached")
	}
	if !errors.Is(err, outbox.ErrDestinationRefused) {
		t.Fatalf("error %v, want ErrDestinationRefused", err)
	}
	c := &faq.APICaller{Client: client, Getenv: func(string) string { return apiSecret }}
	step := faq.APIStep{Method: "GET", URL: ts.URL + "/orders/{{.value}}", Headers: map[string]string{"Authorization": "Bearer ${T}"}, Reply: "{{.order.status}}"}
	if _, outcome := c.Call(context.Background(), step, "1042"); outcome != faq.APIFailed {
		t.Fatalf("outcome %q", outcome)
	}
}

func TestAPIStepValidate(t *testing.T) {
	for _, s := range []faq.APIStep{
		{Method: "TRACE", URL: "https://x.example/o/{{.value}}", Reply: "r"},
		{Method: "GET", URL: "ftp://x.example/o", Reply: "r"},
		{Method: "GET", URL: "https://x.example/o?token=${SECRET}", Reply: "r"},
		{Method: "GET", URL: "https://x.example/o/{{.value", Reply: "r"},
		{Method: "GET", URL: "https://x.example/o/{{.value}}", Reply: ""},
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("%+v validated", s)
		}
	}
}
