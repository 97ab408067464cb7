package kookoo

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/koelvoice/koel/ivr/bot"
	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/demo"
	"github.com/koelvoice/koel/ivr/outbox"
	"github.com/koelvoice/koel/ivr/store"
)

// apiStepOptions wraps the harness's FAQ bot with the demo's order_status
// API step against the demo's fake order API on loopback (the step's
// timeout cut to 300 ms so the slow order fails fast).
func apiStepOptions(t *testing.T) harnessOptions {
	const token = "test-orders-token"
	srv := httptest.NewServer(demo.OrderAPI(token))
	t.Cleanup(srv.Close)
	step := demo.OrderStep(srv.URL)
	step.Timeout = 300 * time.Millisecond
	caller := &faq.APICaller{
		Client: faq.NewAPIClient(outbox.DialPolicy{AllowLoopback: true}.Dialer()),
		Getenv: func(name string) string {
			if name == demo.OrdersTokenEnv {
				return token
			}
			return ""
		},
	}
	return harnessOptions{wrap: func(inner bot.Bot, st store.Store) bot.Bot {
		return &faq.APISteps{Inner: inner, Messages: st, Caller: caller,
			Steps: func(int64) map[string]faq.APIStep { return map[string]faq.APIStep{demo.OrderNode: step} }}
	}}
}

// apiStepConformanceCases are the KooKoo exchanges of the demo's
// order-status API step: the question, the order number keyed inside
// <collectdtmf> (or said after the keys time out), and the error replies.
func apiStepConformanceCases() []conformanceCase {
	nc := "GET demo?event=NewCall&sid={sid}&{caller}"
	rec := func(path string) string {
		return "GET demo?event=Record&sid={sid}&data={rec}" + path + "&status=silence"
	}
	keys := func(d string) string { return "GET demo?event=GotDTMF&sid={sid}&data=" + d }
	setup := func(t *testing.T, h *harness) {
		h.pre.set(h.recs.URL+"/q-order.wav", "where is my order")
		h.pre.set(h.recs.URL+"/q-order-spoken.wav", "it is one zero four two")
	}
	return []conformanceCase{
		{name: "api_step_keyed_order", opts: apiStepOptions, setup: setup,
			steps: []string{nc, rec("/q-order.wav"), keys("1042%23"), rec("/q-hours.wav")}},
		{name: "api_step_unknown_order", opts: apiStepOptions, setup: setup,
			steps: []string{nc, rec("/q-order.wav"), keys("9999")}},
		{name: "api_step_outage_and_timeout", opts: apiStepOptions, setup: setup,
			steps: []string{nc, rec("/q-order.wav"), keys(demo.OrderOutage + "%23"), rec("/q-order.wav"), keys(demo.OrderSlow)}},
		{name: "api_step_spoken_after_no_keys", opts: apiStepOptions, setup: setup,
			steps: []string{nc, rec("/q-order.wav"), keys(""), rec("/q-order-spoken.wav")}},
	}
}
