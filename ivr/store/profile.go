package store

import (
	"context"
	"fmt"

	"github.com/koelvoice/koel/ivr"
)

// MaxProfileFieldBytes caps each field of a user profile.
const MaxProfileFieldBytes = 256

const profileCols = `user_id, first_name, last_name, source, updated_at`

func scanProfile(r rowScanner) (ivr.UserProfile, error) {
	var p ivr.UserProfile
	err := r.Scan(&p.UserID, &p.FirstName, &p.LastName, &p.Source, timeCol{&p.UpdatedAt})
	return p, err
}

// SetUserProfile implements [Store].
func (s *sqlStore) SetUserProfile(ctx context.Context, p *ivr.UserProfile) error {
	op := fmt.Sprintf("set profile of user %d", p.UserID)
	var v validator
	v.id("user", p.UserID)
	v.text("first_name", p.FirstName, MaxProfileFieldBytes)
	v.text("last_name", p.LastName, MaxProfileFieldBytes)
	v.text("source", p.Source, MaxURLBytes)
	if v.err != nil {
		return fmt.Errorf("%s: %w", op, v.err)
	}
	saved, err := getRow(ctx, s, s.writer(), op, scanProfile,
		`INSERT INTO user_profiles (user_id, first_name, last_name, source, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET first_name = excluded.first_name, last_name = excluded.last_name,
		source = excluded.source, updated_at = excluded.updated_at
		RETURNING `+profileCols,
		p.UserID, p.FirstName, p.LastName, p.Source, timeValue(s.clock()))
	if err != nil {
		return err
	}
	*p = saved
	return nil
}

// GetUserProfile implements [Store].
func (s *sqlStore) GetUserProfile(ctx context.Context, userID int64) (ivr.UserProfile, error) {
	return getRow(ctx, s, s.reader(), fmt.Sprintf("get profile of user %d", userID), scanProfile,
		`SELECT `+profileCols+` FROM user_profiles WHERE user_id = ?`, userID)
}
