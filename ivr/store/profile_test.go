package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/store"
	"github.com/koelvoice/koel/ivr/store/storetest"
)

func testUserProfiles(t *testing.T, s store.Store) {
	ctx := context.Background()
	b := ivr.Business{Name: "b", Active: true}
	if err := s.CreateBusiness(ctx, &b); err != nil {
		t.Fatal(err)
	}
	u, err := s.RegisterUser(ctx, b.ID, ivr.ChannelWebchat, "webchat.abc")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUserProfile(ctx, u.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("profile before any: %v, want ErrNotFound", err)
	}
	p := ivr.UserProfile{UserID: u.ID, FirstName: "Abhilash", LastName: "Murthy", Source: "https://a9sn38h.app.link"}
	if err := s.SetUserProfile(ctx, &p); err != nil {
		t.Fatal(err)
	}
	if p.UpdatedAt.IsZero() {
		t.Fatal("UpdatedAt not set")
	}
	p2 := ivr.UserProfile{UserID: u.ID, FirstName: "Asha", Source: "https://a9sn38h.app.link"}
	if err := s.SetUserProfile(ctx, &p2); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetUserProfile(ctx, u.ID)
	if err != nil || got.FirstName != "Asha" || got.LastName != "" || got.Source != p.Source || got.UserID != u.ID {
		t.Fatalf("profile %+v, %v", got, err)
	}
	for _, bad := range []ivr.UserProfile{
		{UserID: u.ID, FirstName: "a\x00b"},
		{UserID: u.ID, LastName: "\xff"},
		{UserID: u.ID, FirstName: strings.Repeat("x", store.MaxProfileFieldBytes+1)},
		{UserID: 0, FirstName: "x"},
	} {
		if err := s.SetUserProfile(ctx, &bad); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("SetUserProfile(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	if got, _ := s.GetUserProfile(ctx, u.ID); got.FirstName != "Asha" {
		t.Fatalf("a refused write changed the profile: %+v", got)
	}
}

func TestUserProfilesSQLite(t *testing.T)   { testUserProfiles(t, storetest.NewSQLite(t)) }
func TestUserProfilesPostgres(t *testing.T) { testUserProfiles(t, storetest.NewPostgres(t)) }
