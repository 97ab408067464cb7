package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/store"
)

// testAppendInbound checks that AppendInbound stores a user's message with
// the user and the conversation it needs in one transaction, reuses what
// exists, and stores nothing (no user, no conversation) when it refuses.
func testAppendInbound(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	f := seed(t, s)
	other := ivr.Business{Name: "other"}
	must(t, s.CreateBusiness(ctx, &other))
	key := func(ext string) ivr.User {
		return ivr.User{BusinessID: f.biz.ID, Channel: ivr.ChannelWebhook, ExternalID: ext, Registered: true}
	}
	in := func(text, ext string) *ivr.Message {
		return &ivr.Message{Sender: ivr.SenderUser, Text: text, Channel: ivr.ChannelWebhook, ExternalID: ext}
	}
	cases := []struct {
		name string
		user ivr.User
		msg  *ivr.Message
		// want is nil when the call must succeed.
		want error
		// newUser and newConv say whether the call creates them.
		newUser, newConv bool
	}{
		{name: "new user", user: key("+919800000002"), msg: in("hello", "m-1"), newUser: true, newConv: true},
		{name: "known user by key", user: key("+919800000001"), msg: in("again", "m-2")},
		{name: "known user by id", user: f.user, msg: in("by id", "")},
		{name: "unregistered new user", user: ivr.User{BusinessID: f.biz.ID, Channel: ivr.ChannelWebhook, ExternalID: "anon"}, msg: in("hi", ""),
			newUser: true, newConv: true},
		{name: "duplicate external id", user: key("+919800000003"), msg: in("dup", "m-1"), want: store.ErrConflict},
		{name: "NUL in text", user: key("+919800000004"), msg: in("a\x00b", ""), want: store.ErrInvalid},
		{name: "empty external user id", user: key(""), msg: in("x", ""), want: store.ErrInvalid},
		{name: "NUL in user id", user: key("+91\x00"), msg: in("x", ""), want: store.ErrInvalid},
		{name: "user of another business", user: ivr.User{ID: f.user.ID, BusinessID: other.ID, Channel: ivr.ChannelWebhook}, msg: in("x", ""),
			want: store.ErrInvalid},
		{name: "missing business", user: ivr.User{BusinessID: f.biz.ID + 99, Channel: ivr.ChannelWebhook, ExternalID: "ghost"}, msg: in("x", ""),
			want: store.ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := *tc.msg
			u, conv, err := s.AppendInbound(ctx, tc.user, tc.msg)
			if tc.want != nil {
				wantErr(t, err, tc.want)
				diff(t, "message after a refused call", *tc.msg, before)
				if tc.user.ID == 0 && tc.user.ExternalID != "+919800000001" {
					if _, err := s.GetUser(ctx, tc.user.BusinessID, tc.user.Channel, tc.user.ExternalID); !errors.Is(err, store.ErrNotFound) {
						t.Errorf("a refused call left a user behind (err %v)", err)
					}
				}
				return
			}
			must(t, err)
			if u.ID == 0 || u.BusinessID != f.biz.ID || u.ExternalID != tc.user.ExternalID && tc.user.ID == 0 || u.Registered != (tc.user.Registered || tc.user.ID != 0) {
				t.Errorf("user = %+v, asked for %+v", u, tc.user)
			}
			if (u.ID != f.user.ID) != tc.newUser {
				t.Errorf("user %d, seeded user %d: new = %v, want %v", u.ID, f.user.ID, u.ID != f.user.ID, tc.newUser)
			}
			if (conv.ID != f.conv.ID) != tc.newConv || !conv.Open || conv.UserID != u.ID || conv.Handoff != ivr.HandoffBot {
				t.Errorf("conversation = %+v (seeded %d), want new = %v", conv, f.conv.ID, tc.newConv)
			}
			m := tc.msg
			if m.ID == 0 || m.CreatedAt.IsZero() || m.BusinessID != f.biz.ID || m.UserID != u.ID || m.ConversationID != conv.ID {
				t.Errorf("message = %+v", *m)
			}
			stored, err := s.ListMessages(ctx, conv.ID, 1)
			must(t, err)
			if len(stored) != 1 {
				t.Fatalf("newest message of conversation %d: %d rows", conv.ID, len(stored))
			}
			diff(t, "stored message", stored[0], *m)
		})
	}
}

// testRaceAppendInbound checks that concurrent first messages of one new
// user make one user and one conversation holding every message.
func testRaceAppendInbound(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	b := ivr.Business{Name: "b"}
	must(t, s.CreateBusiness(ctx, &b))
	users := make([]ivr.User, racers)
	convs := make([]ivr.Conversation, racers)
	errs := race(racers, func(i int) error {
		var err error
		users[i], convs[i], err = s.AppendInbound(ctx, ivr.User{BusinessID: b.ID, Channel: ivr.ChannelWhatsApp, ExternalID: "+15550002", Registered: true},
			&ivr.Message{Sender: ivr.SenderUser, Text: fmt.Sprint("m", i), Channel: ivr.ChannelWhatsApp, ExternalID: fmt.Sprint("wamid.", i)})
		return err
	})
	for i, err := range errs {
		must(t, err)
		if users[i].ID != users[0].ID || convs[i].ID != convs[0].ID {
			t.Errorf("racer %d got user %d conversation %d, racer 0 user %d conversation %d", i, users[i].ID, convs[i].ID, users[0].ID, convs[0].ID)
		}
	}
	msgs, err := s.ListMessages(ctx, convs[0].ID, 0)
	must(t, err)
	if len(msgs) != racers {
		t.Errorf("conversation holds %d messages, want %d", len(msgs), racers)
	}
}
