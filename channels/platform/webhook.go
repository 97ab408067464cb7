package platform

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/api"
)

// Webhook is one platform's inbound webhook, served by [Receive] with the
// prologue every adapter shares: find the active connection that the
// path's {identifier} names, check the request's credentials, read the
// request, verify its signature, parse it into messages, run them through
// the engine, and answer in the platform's own way. B is what the request
// is read into: the raw body for JSON platforms ([Body]), a form for
// Twilio.
//
// Refusals are counted in koel_channel_rejected_total: a failed Authorize
// or Verify as "signature", a failed Parse as "malformed" (Read counts its
// own); every error is answered through [Pipeline.Fail].
type Webhook[B any] struct {
	Channel ivr.Channel
	// Lookup finds the connection named identifier (nil:
	// [Pipeline.Connection], a 404 for a missing or inactive one).
	Lookup func(r *http.Request, identifier string) (ivr.Connection, error)
	// Authorize checks the request's headers before it is read (a token);
	// its error is the answer. nil: none.
	Authorize func(conn ivr.Connection, r *http.Request) error
	// Read reads the request (see [Body]).
	Read func(w http.ResponseWriter, r *http.Request) (B, error)
	// Verify checks the signature over what was read; its error is the
	// answer. nil: none.
	Verify func(conn ivr.Connection, r *http.Request, req B) error
	// Parse turns what was read into the messages to handle.
	Parse func(conn ivr.Connection, req B) ([]Message, error)
	// Sync, when set and true for the connection, has the replies answered
	// in the HTTP response by Respond instead of delivered by the outbox.
	Sync func(conn ivr.Connection) bool
	// Respond writes the answer once the messages were handled (nil: an
	// empty 200).
	Respond func(w http.ResponseWriter, conn ivr.Connection, replies []ivr.Reply)
}

// Body returns a Webhook.Read that reads the raw body, refusing more than
// max bytes (0: [MaxBody]) with 413 and an empty body with 400.
func Body(max int64) func(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return func(w http.ResponseWriter, r *http.Request) ([]byte, error) { return ReadBody(w, r, max) }
}

// Receive returns the handler of wh on p.
func Receive[B any](p *Pipeline, wh Webhook[B]) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := receive(p, wh, w, r); err != nil {
			p.Fail(w, r, wh.Channel, err)
		}
	}
}

func receive[B any](p *Pipeline, wh Webhook[B], w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id := mux.Vars(r)["identifier"]
	var conn ivr.Connection
	var err error
	if wh.Lookup != nil {
		conn, err = wh.Lookup(r, id)
	} else {
		conn, err = p.Connection(ctx, wh.Channel, id)
	}
	if err != nil {
		return err
	}
	if wh.Authorize != nil {
		if err := wh.Authorize(conn, r); err != nil {
			p.Metrics.Rejected(wh.Channel, RejectSignature)
			return err
		}
	}
	req, err := wh.Read(w, r)
	if err != nil {
		return err
	}
	if wh.Verify != nil {
		if err := wh.Verify(conn, r, req); err != nil {
			p.Metrics.Rejected(wh.Channel, RejectSignature)
			return err
		}
	}
	msgs, err := wh.Parse(conn, req)
	if err != nil {
		p.Metrics.Rejected(wh.Channel, RejectMalformed)
		return err
	}
	async := wh.Sync == nil || !wh.Sync(conn)
	replies, err := p.Handle(ctx, conn, msgs, async)
	if err != nil {
		return err
	}
	if wh.Respond != nil {
		wh.Respond(w, conn, replies)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// MetaSignature returns a Webhook.Verify that checks X-Hub-Signature-256
// (see [VerifyMeta]) with the app secret that secret reads from the
// connection; a mismatch answers 403.
func MetaSignature(secret func(ivr.Connection) ivr.Secret) func(ivr.Connection, *http.Request, []byte) error {
	return func(conn ivr.Connection, r *http.Request, body []byte) error {
		if err := VerifyMeta(secret(conn).Reveal(), r.Header, body); err != nil {
			return api.Errorf(http.StatusForbidden, "invalid signature")
		}
		return nil
	}
}

// MetaVerification returns the handler of Meta's subscription check (GET,
// see [ServeMetaVerification]) on the connection of ch that the path's
// {identifier} names, with the verify token that token reads from it.
func MetaVerification(p *Pipeline, ch ivr.Channel, token func(ivr.Connection) ivr.Secret) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, err := p.Connection(r.Context(), ch, mux.Vars(r)["identifier"])
		if err != nil {
			p.Fail(w, r, ch, err)
			return
		}
		ServeMetaVerification(w, r, token(conn).Reveal())
	}
}

// SharedSecretAuth returns a Webhook.Authorize that requires the secret
// that secret reads from the connection (see [SharedSecret]); a mismatch
// answers 401 "invalid authorization".
func SharedSecretAuth(secret func(ivr.Connection) ivr.Secret) func(ivr.Connection, *http.Request) error {
	return func(conn ivr.Connection, r *http.Request) error {
		if !SharedSecret(r, secret(conn).Reveal()) {
			return api.Errorf(http.StatusUnauthorized, "invalid authorization")
		}
		return nil
	}
}
