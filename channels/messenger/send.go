package messenger

import (
	"errors"
	"net/http"
	"strings"

	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/ivr"
)

// DefaultGraphURL is the Graph API host; GraphVersion is the API version
// called on it.
const (
	DefaultGraphURL = "https://graph.facebook.com"
	GraphVersion    = "v21.0"
)

// DefaultPageRate is the Send API's documented limit for text: 300 calls
// per second per page.
const DefaultPageRate = 300

// NewSender returns the Messenger outbox sender: Send API requests with
// the connection's page access token as a bearer header (so it never
// appears in a URL, a stored error or a log line), paced at
// DefaultPageRate per page, Graph error codes classified.
func NewSender(http *platform.Sender) *platform.APISender {
	return &platform.APISender{
		HTTP:    http,
		Channel: Channel,
		Base: func(conn ivr.Connection) string {
			return strings.TrimRight(platform.Or(conn.Settings.Messenger.GraphURL, DefaultGraphURL), "/") + "/" + GraphVersion
		},
		Render:   Render,
		Auth:     authorize,
		Classify: platform.ClassifyGraph,
		Pace:     platform.NewLimiter(DefaultPageRate, DefaultPageRate),
	}
}

func authorize(conn ivr.Connection, req *http.Request) error {
	if !conn.Settings.Messenger.PageAccessToken.IsSet() {
		return errors.New("connection has no page access token")
	}
	req.Header.Set("Authorization", "Bearer "+conn.Settings.Messenger.PageAccessToken.Reveal())
	return nil
}
