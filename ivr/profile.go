package ivr

import "time"

// UserProfile is what a frontend told koel about one of its users: the
// other-channels API's bot_user names and the custom domain the user was
// registered from. Platforms' own profile data (Messenger names, WhatsApp
// profile names) is not kept.
type UserProfile struct {
	UserID    int64
	FirstName string
	LastName  string
	// Source is the domain the user was registered from.
	Source    string
	UpdatedAt time.Time
}
