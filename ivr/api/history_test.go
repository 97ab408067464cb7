package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/api"
	"github.com/koelvoice/koel/ivr/demo"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

// TestHistoryOnePersonVoiceAndText: a caller (KooKoo, national number)
// who later writes on WhatsApp (E.164 without '+') has one history: the
// call is conversation 1 with the transcribed words, the chat is 2, under
// either spelling of the number.
func TestHistoryOnePersonVoiceAndText(t *testing.T) {
	f := newHandoffFixture(t, storetest.NewSQLite)
	ctx := context.Background()
	add := func(ch ivr.Channel, ext string, lines ...string) {
		t.Helper()
		u, err := f.st.EnsureUser(ctx, 1, ch, ext, true)
		if err != nil {
			t.Fatal(err)
		}
		conv, err := f.st.OpenConversation(ctx, 1, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		var msgs []*ivr.Message
		for i, l := range lines {
			sender := ivr.SenderUser
			if i%2 == 1 {
				sender = ivr.SenderBot
			}
			msgs = append(msgs, &ivr.Message{BusinessID: 1, ConversationID: conv.ID, UserID: u.ID, Sender: sender, Text: l, Channel: ch})
		}
		if err := f.st.AppendMessages(ctx, msgs, nil); err != nil {
			t.Fatal(err)
		}
		if err := f.st.CloseConversation(ctx, conv.ID); err != nil {
			t.Fatal(err)
		}
	}
	add(ivr.ChannelKooKoo, "09876543210", "how much is delivery", "Delivery is free for orders above five hundred rupees.")
	add(ivr.ChannelMetaWhatsApp, "919876543210", "and the return policy?", "You can return any product within ten days.")
	auth := map[string]string{"Authorization": "Bearer tok", "client-id": demo.ClientID}
	for _, user := range []string{"09876543210", "919876543210", "%2B919876543210"} {
		for no, want := range map[string]string{"1": "user: how much is delivery\nbot: Delivery is free", "2": "user: and the return policy?\nbot: You can return"} {
			code, out := f.do(t, http.MethodGet, api.HistoryV1Path+"?business_id=1&response_type=text&conversation_no="+no+"&user_name="+user, "", auth)
			if code != 200 || !strings.HasPrefix(out["chat_text"].(string), want) {
				t.Fatalf("%s conversation %s: %d %v, want %q", user, no, code, out, want)
			}
		}
	}
}

func TestUserNameCandidates(t *testing.T) {
	cases := []struct {
		in   string
		want []string // must be among the candidates
		not  []string
	}{
		{"09876543210", []string{"09876543210", "+919876543210", "919876543210", "whatsapp:+919876543210"}, nil},
		{"+919876543210", []string{"919876543210", "09876543210", "9876543210", "whatsapp:+919876543210"}, nil},
		{"whatsapp:+14155238886", []string{"14155238886", "+14155238886"}, nil},
		{"PSID1234567890", []string{"PSID1234567890"}, []string{"1234567890"}},
		{"asha-42", []string{"asha-42"}, nil},
	}
	for _, tc := range cases {
		got := strings.Join(api.UserNameCandidates(tc.in), " ")
		for _, w := range tc.want {
			if !strings.Contains(" "+got+" ", " "+w+" ") {
				t.Errorf("%s: candidates %q lack %q", tc.in, got, w)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(" "+got+" ", " "+n+" ") {
				t.Errorf("%s: candidates %q hold %q", tc.in, got, n)
			}
		}
	}
}

// FuzzChatHistoryParams sends arbitrary query values through both
// versions' real handlers: never a panic, never a 5xx.
func FuzzChatHistoryParams(f *testing.F) {
	f.Add("u1", "1", "1", "2", "text", "")
	f.Add("", "abc", "two", "-1", "xml", "tw389ysgd._aksdjknsk-545641964-B")
	f.Add("09876543210", "1", "99999999999999999999", "", "json", "MTp1MQ.")
	fx := newHandoffFixture(f, storetest.NewSQLite)
	f.Fuzz(func(t *testing.T, user, business, conv, limit, rt, pxut string) {
		q := "?user_name=" + qesc(user) + "&business_id=" + qesc(business) + "&conversation_no=" + qesc(conv) +
			"&limit=" + qesc(limit) + "&response_type=" + qesc(rt) + "&pxut=" + qesc(pxut)
		for _, p := range []string{api.HistoryV1Path, api.HistoryV2Path} {
			code, _ := fx.do(t, http.MethodGet, p+q, "", map[string]string{"Authorization": "Bearer tok", "client-id": demo.ClientID})
			if code >= 500 {
				t.Fatalf("%s%s: %d", p, q, code)
			}
		}
	})
}
