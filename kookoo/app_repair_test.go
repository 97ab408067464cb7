package kookoo

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/koelvoice/koel/ivr"
)

// TestRepairTranscriptAndTurns checks what a confirmed answer and a topic
// chosen from the menu leave behind: the conversation shows what the
// caller heard, in order, and each turn records its understanding band.
func TestRepairTranscriptAndTurns(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	setupRecordings(t, h)
	const sid = "4200000000000001"
	rec := func(path string) string {
		return "sid=" + sid + "&event=Record&data=" + url.QueryEscape(h.recs.URL+path)
	}
	for _, q := range []string{
		"sid=" + sid + "&event=NewCall&" + caller,
		rec("/q-screen.wav"), // confirm
		rec("/q-yes.wav"),    // confirmed
		rec("/q-mumble.wav"), // reprompt
		rec("/q-mumble-2.wav"),
		"sid=" + sid + "&event=GotDTMF&data=1", // opening hours
	} {
		if code, body := h.get("demo", q); code != http.StatusOK {
			t.Fatalf("%s: %d %s", q, code, body)
		}
	}
	call := h.call(sid)
	msgs, err := h.store.MessagesAfter(context.Background(), call.ConversationID, 0)
	if err != nil {
		t.Fatal(err)
	}
	type line struct{ Sender, Text, Node string }
	var got []line
	for _, m := range msgs {
		got = append(got, line{m.Sender, m.Text, m.Node})
	}
	want := []line{
		{ivr.SenderUser, "my screen is broken", ""},
		{ivr.SenderBot, "Do you want to know about repair? Say yes or no.", ""},
		{ivr.SenderUser, "yes please", ""},
		{ivr.SenderBot, "You can book a repair at any store or from the Service page. Bring your invoice and the product.", "repair"},
		{ivr.SenderUser, "blue sky green", ""},
		{ivr.SenderBot, ivr.NotUnderstoodMessage, ""},
		{ivr.SenderUser, "green sky blue", ""},
		{ivr.SenderBot, ivr.TopicMenuIntro + " Press 1 for opening hours, 2 for store location, 3 for order status, 4 for cancel order, 5 for return product, or 0 for an agent.", ""},
		{ivr.SenderUser, "opening hours", ""},
		{ivr.SenderBot, "Our stores are open from nine in the morning to nine in the evening, Monday to Saturday, and from ten to six on Sunday.", "opening_hours"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("conversation (-want +got):\n%s", diff)
	}
	var bands []string
	for _, tr := range h.turns(sid) {
		bands = append(bands, tr.Understanding)
	}
	wantBands := []string{ivr.UnderstandingConfirm, ivr.UnderstandingConfirmed, ivr.UnderstandingReprompt, ivr.UnderstandingMenu, ivr.UnderstandingMenu}
	if diff := cmp.Diff(wantBands, bands); diff != "" {
		t.Errorf("turn bands (-want +got):\n%s", diff)
	}
	if got := gatheredValue(t, h.reg, "koel_call_understanding_total", "band", ivr.UnderstandingConfirmed); got != 1 {
		t.Errorf("confirmed turns counted = %v, want 1", got)
	}
}
