package messenger

import (
	"context"
	"strconv"

	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/ivr"
)

// DefaultGraphURL is the Graph API base the Send API is called on.
const DefaultGraphURL = "https://graph.facebook.com/v21.0"

// DefaultPageRate is the Send API's documented limit for text: 300 calls
// per second per page.
const DefaultPageRate = 300

// Sender delivers Messenger replies through the Send API.
type Sender struct {
	HTTP *platform.Sender
	// GraphURL is the Graph base URL (empty: DefaultGraphURL); a
	// connection's api_base_url setting overrides it.
	GraphURL string
	// Pages paces sends per page (nil: no pacing).
	Pages *platform.Limiter
}

// NewSender returns a sender paced at DefaultPageRate per page.
func NewSender(http *platform.Sender) *Sender {
	return &Sender{HTTP: http, Pages: platform.NewLimiter(DefaultPageRate, DefaultPageRate)}
}

// Send posts one stored Send API request with the connection's page access
// token, as an Authorization header so it never appears in a URL or an
// error.
func (s *Sender) Send(ctx context.Context, conn ivr.Connection, item ivr.OutboxItem) error {
	token := conn.Settings.AccessToken
	if token == "" {
		return &platform.DeliveryError{Channel: Channel, Class: platform.ClassAuth, Final: true, Detail: "connection has no page access token"}
	}
	if err := s.Pages.Wait(ctx, strconv.FormatInt(conn.ID, 10)); err != nil {
		return &platform.DeliveryError{Channel: Channel, Class: platform.ClassNetwork, Detail: err.Error()}
	}
	base := s.GraphURL
	if base == "" {
		base = DefaultGraphURL
	}
	req, err := platform.NewRequest(platform.BaseURL(conn, base), item.URL, item.Body, item.ContentType)
	if err != nil {
		return &platform.DeliveryError{Channel: Channel, Class: platform.ClassClient, Final: true, Detail: err.Error()}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return s.HTTP.Post(ctx, Channel, item, req, platform.ClassifyGraph)
}
