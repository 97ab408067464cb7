package faq_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot"
	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/outbox"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// TestAPIStepsInTheDialogue: by text, the order_status node asks for the
// order number, the next message is looked up in the business's API, and
// each error scenario gets its reply; afterwards the FAQ answers again.
func TestAPIStepsInTheDialogue(t *testing.T) {
	ts := orderAPI(t)
	st := storetest.NewSQLite(t)
	ctx := context.Background()
	if err := st.CreateBusiness(ctx, &ivr.Business{ID: 1, Name: "shop", ClientID: "c", Active: true}); err != nil {
		t.Fatal(err)
	}
	csv := "node_name,user_says,bot_says\n" +
		"order_status,where is my order|track my order|order status,\"Sure, what is your order number?\"\n" +
		"store_hours,what are your opening hours|when are you open,We are open from nine to nine.\n"
	if _, err := faq.Import(ctx, st, 1, strings.NewReader(csv), faq.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	step := faq.APIStep{Method: "GET", URL: ts.URL + "/orders/{{.value}}", Headers: map[string]string{"Authorization": "Bearer ${SHOP_API_TOKEN}"},
		Reply: "Your order {{.order.id}} is {{.order.status}}."}
	b := &faq.APISteps{
		Inner:    faq.New(st, faq.Options{}),
		Messages: st,
		Caller: &faq.APICaller{Client: faq.NewAPIClient(outbox.DialPolicy{AllowLoopback: true}.Dialer()),
			Getenv: func(k string) string { return map[string]string{"SHOP_API_TOKEN": apiSecret}[k] }},
		Steps: func(id int64) map[string]faq.APIStep {
			if id == 1 {
				return map[string]faq.APIStep{"order_status": step}
			}
			return nil
		},
	}
	eng, err := ivr.NewEngine(ivr.EngineConfig{Store: st, Bot: b, BreakMessage: "Sorry, our order system is not answering."})
	if err != nil {
		t.Fatal(err)
	}
	say := func(text string) ivr.Reply {
		t.Helper()
		r, err := eng.Handle(ctx, ivr.Inbound{BusinessID: 1, Channel: ivr.ChannelAPI, UserExternalID: "shopper", Text: text})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, turn := range []struct{ say, want string }{
		{"where is my order", "Sure, what is your order number?"},
		{"1042", "Your order 1042 is out for delivery."},
		{"what are your opening hours", "We are open from nine to nine."},
		{"track my order", "Sure, what is your order number?"},
		{"9999", faq.DefaultNotFound},
		{"order status", "Sure, what is your order number?"},
		{"5000", "Sorry, our order system is not answering."},
		{"order status", "Sure, what is your order number?"},
		{"7000", "Sorry, our order system is not answering."},
	} {
		r := say(turn.say)
		if len(r.Messages) != 1 || r.Messages[0].Text != turn.want {
			t.Fatalf("%q answered %+v, want %q", turn.say, r.Messages, turn.want)
		}
	}
}

// TestAPIStepsAskToCollect: the answer of a node with an API step says it
// collects a value (so a voice caller may key it), with the step's key
// count; other answers do not.
func TestAPIStepsAskToCollect(t *testing.T) {
	st := storetest.NewSQLite(t)
	ctx := context.Background()
	if err := st.CreateBusiness(ctx, &ivr.Business{ID: 1, Name: "shop", ClientID: "c", Active: true}); err != nil {
		t.Fatal(err)
	}
	csv := "node_name,user_says,bot_says\n" +
		"order_status,where is my order|track my order,\"Sure, what is your order number?\"\n" +
		"store_hours,what are your opening hours,We are open from nine to nine.\n"
	if _, err := faq.Import(ctx, st, 1, strings.NewReader(csv), faq.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	b := &faq.APISteps{Inner: faq.New(st, faq.Options{}), Messages: st, Caller: &faq.APICaller{},
		Steps: func(int64) map[string]faq.APIStep {
			return map[string]faq.APIStep{"order_status": {Method: "GET", URL: "https://x.test/{{.value}}", Reply: "ok", MaxDigits: 6}}
		}}
	for _, tt := range []struct {
		text string
		want *bot.Collect
	}{
		{"where is my order", &bot.Collect{MaxDigits: 6}},
		{"what are your opening hours", nil},
	} {
		r, err := b.Reply(ctx, bot.Request{BusinessID: 1, Text: tt.text})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(r.Collect) != fmt.Sprint(tt.want) {
			t.Errorf("%q: Collect = %+v, want %+v", tt.text, r.Collect, tt.want)
		}
	}
}

func TestCollectedValue(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"1042", "1042"},
		{" BL-1042 ", "BL-1042"},
		{"one zero four two", "1042"},
		{"it is one oh four two", "1042"},
		{"my order number is 1042", "1042"},
		{"10 42", "1042"},
		{"four two for one", "4241"},
		{"what are your opening hours", "what are your opening hours"},
		{"", ""},
		{"../../admin", "../../admin"},
	} {
		if got := faq.CollectedValue(tt.in); got != tt.want {
			t.Errorf("CollectedValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
