package platform

import (
	"context"
	"net/http"
	"strconv"

	"github.com/koelvoice/koel/channels/smf"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/outbox"
)

// Request is one platform send request before its credentials: the path
// under the platform's base URL, the body and its media type.
type Request struct {
	Path        string
	Body        []byte
	ContentType string
}

// Renderer renders one Standard Message Format message to recipient as the
// platform's send request, reading addressing settings (sender number,
// phone-number id) from the connection. An error is final: the same
// message and settings will not render next time either.
type Renderer func(conn ivr.Connection, recipient string, m smf.Message) (Request, error)

// Authorizer adds the connection's credentials to a send request (header
// only, never the URL). An error means the connection lacks them.
type Authorizer func(conn ivr.Connection, req *http.Request) error

// APISender is one platform's outbox sender: it decodes an item's Standard
// Message Format body, renders it for the platform, adds the connection's
// credentials, paces per connection and posts it. It implements
// outbox.Sender.
type APISender struct {
	HTTP    *Sender
	Channel ivr.Channel
	// Base returns the platform's API base URL for a connection: the
	// connection's override (a local fake in tests, a proxy) or the
	// platform's public URL; Infobip's is account-specific.
	Base   func(conn ivr.Connection) string
	Render Renderer
	Auth   Authorizer
	// Classify reads the platform's error codes (nil: status only).
	Classify Classify
	// Pace limits sends per connection (nil: no pacing).
	Pace *Limiter
}

// Send implements outbox.Sender.
func (s *APISender) Send(ctx context.Context, conn ivr.Connection, item ivr.OutboxItem) error {
	msg, err := outbox.DecodeMessage(item)
	if err != nil {
		return err
	}
	if item.Recipient == "" {
		return s.config("item has no recipient")
	}
	req, err := s.Render(conn, item.Recipient, smf.FromOutbox(msg))
	if err != nil {
		return s.config(err.Error())
	}
	base := s.Base(conn)
	if base == "" {
		return s.config("connection has no API base URL")
	}
	httpReq, err := NewRequest(base, req.Path, req.Body, req.ContentType)
	if err != nil {
		return s.config(err.Error())
	}
	if err := s.Auth(conn, httpReq); err != nil {
		s.HTTP.Metrics.Failed(s.Channel, ClassAuth)
		return outbox.Permanent(outbox.WithClass(ClassAuth, &DeliveryError{Channel: s.Channel, Class: ClassAuth, Final: true, Detail: err.Error()}))
	}
	if err := s.Pace.Wait(ctx, strconv.FormatInt(conn.ID, 10)); err != nil {
		return outbox.WithClass(outbox.ClassTimeout, &DeliveryError{Channel: s.Channel, Class: outbox.ClassTimeout, Detail: err.Error()})
	}
	return s.HTTP.Post(ctx, s.Channel, item, httpReq, s.Classify)
}

func (s *APISender) config(detail string) error {
	s.HTTP.Metrics.Failed(s.Channel, outbox.ClassConfig)
	return outbox.Permanent(outbox.WithClass(outbox.ClassConfig, &DeliveryError{Channel: s.Channel, Class: outbox.ClassConfig, Final: true, Detail: detail}))
}
