// Package twilio is koel's Twilio WhatsApp channel at whatsapp/{identifier},
// as the seed "Deploying to Twilio Whatsapp" sets it up and
// spec/channels.md §2 describes the platform (Twilio SMS numbers work the
// same way).
//
// Twilio POSTs each inbound message form-encoded (or sends it as a GET
// query, when the number is configured so). The request must carry a
// valid X-Twilio-Signature: base64 HMAC-SHA1 with the connection's auth
// token over the public URL Twilio called and every sorted name+value pair
// (see [Validate]; the URL is the connection's public_url, else
// [Adapter.PublicURL] + the path, else rebuilt from the request's Host and
// X-Forwarded-Proto). From, Body, ButtonPayload (a
// quick-reply tap, preferred over Body), NumMedia, WaId and ProfileName are
// read; MessageSid is the dedupe key, so a redelivery is answered once.
// ProfileName is not stored.
//
// The reply is TwiML in the HTTP response,
// <Response><Message><Body>…</Body></Message></Response>, one <Message> per
// bot message; quick replies, which WhatsApp text has not, are listed in the
// text. When the connection's reply_rest is set the response is an empty
// <Response/> and each reply goes through the outbox to the REST Messages
// API (POST /2010-04-01/Accounts/{AccountSid}/Messages.json, HTTP Basic with
// the account SID and auth token, From = the connection's from, or
// MessagingServiceSid = the connection's messaging_service_sid instead of
// From when it is set).
//
// A missing or inactive connection answers 404; a bad signature 403 with
// nothing stored; a body that is not a message form 400; over 64 KiB 413.
package twilio

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/channels/platform"
	"github.com/koelvoice/koel/channels/smf"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/api"
)

// Channel is the Twilio WhatsApp channel; its callback path is
// whatsapp/{identifier}.
const Channel = ivr.ChannelWhatsApp

// MaxBody caps an inbound webhook (bytes); Twilio bodies are a few hundred.
const MaxBody = 64 << 10

// DefaultAPIURL is Twilio's REST API base.
const DefaultAPIURL = "https://api.twilio.com"

// DefaultSenderRate is a WhatsApp sender's default throughput on Twilio
// (messages per second); Twilio queues the excess.
const DefaultSenderRate = 10

// UsesREST reports whether the connection replies through the REST API
// rather than TwiML.
func UsesREST(conn ivr.Connection) bool { return conn.Settings.Twilio.ReplyREST }

// Adapter serves whatsapp/{identifier}.
type Adapter struct {
	Pipeline *platform.Pipeline
	// PublicURL is koel's public base URL as Twilio calls it
	// ("https://bot.example.com"); empty rebuilds it from the request.
	PublicURL string
}

// Routes registers the Twilio webhook on r.
func (a *Adapter) Routes(r *mux.Router) {
	r.HandleFunc("/whatsapp/{identifier}", platform.Receive(a.Pipeline, platform.Webhook[url.Values]{
		Channel: Channel,
		Read:    a.readForm,
		Verify:  a.verify,
		Parse: func(_ ivr.Connection, form url.Values) ([]platform.Message, error) {
			msg, ok, err := Parse(form)
			if err != nil || !ok {
				return nil, err
			}
			return []platform.Message{msg}, nil
		},
		Sync:    func(conn ivr.Connection) bool { return !UsesREST(conn) },
		Respond: a.respond,
	})).Methods(http.MethodPost, http.MethodGet)
}

// requestURL is the URL Twilio signed.
func (a *Adapter) requestURL(r *http.Request, conn ivr.Connection) string {
	if u := conn.Settings.Twilio.PublicURL; u != "" {
		if r.URL.RawQuery != "" {
			return u + "?" + r.URL.RawQuery
		}
		return u
	}
	if a.PublicURL != "" {
		return strings.TrimRight(a.PublicURL, "/") + r.URL.RequestURI()
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}

// readForm reads the webhook's parameters: a GET's query, a POST's form
// body.
func (a *Adapter) readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if r.Method == http.MethodGet {
		if len(r.URL.RawQuery) > MaxBody {
			return nil, api.Errorf(http.StatusRequestEntityTooLarge, "query is larger than %d bytes", MaxBody)
		}
		form, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			a.Pipeline.Metrics.Rejected(Channel, platform.RejectMalformed)
			return nil, api.Errorf(http.StatusBadRequest, "malformed query")
		}
		return form, nil
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/x-www-form-urlencoded") {
		return nil, api.Errorf(http.StatusUnsupportedMediaType, "content type must be application/x-www-form-urlencoded")
	}
	body, err := platform.ReadBody(w, r, MaxBody)
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		a.Pipeline.Metrics.Rejected(Channel, platform.RejectMalformed)
		return nil, api.Errorf(http.StatusBadRequest, "malformed form body")
	}
	return form, nil
}

// verify checks X-Twilio-Signature. A GET webhook carries its parameters
// in the signed URL itself; a POST carries them as a form, signed after
// the URL.
func (a *Adapter) verify(conn ivr.Connection, r *http.Request, form url.Values) error {
	signed := form
	if r.Method == http.MethodGet {
		signed = nil
	}
	if err := Validate(conn.Settings.Twilio.AuthToken.Reveal(), a.requestURL(r, conn), signed, r.Header.Get(HeaderSignature)); err != nil {
		return api.Errorf(http.StatusForbidden, "invalid X-Twilio-Signature")
	}
	return nil
}

// respond answers TwiML: the replies, when they are answered in the
// response, else an empty <Response/>.
func (a *Adapter) respond(w http.ResponseWriter, conn ivr.Connection, replies []ivr.Reply) {
	var out []smf.Message
	if !UsesREST(conn) {
		for _, rep := range replies {
			for i := range rep.Stored {
				out = append(out, smf.FromStored(&rep.Stored[i]))
			}
		}
		a.Pipeline.Metrics.DeliveredSync(Channel, len(out))
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(TwiML(out))
}

// Parse reads an inbound message form. It reports false for a message with
// no text (media only); a form without MessageSid or From is a 400.
func Parse(form url.Values) (platform.Message, bool, error) {
	sid := form.Get("MessageSid")
	if sid == "" {
		sid = form.Get("SmsMessageSid")
	}
	from := form.Get("From")
	if sid == "" || from == "" {
		return platform.Message{}, false, api.Errorf(http.StatusBadRequest, "MessageSid and From are required")
	}
	if n := form.Get("NumMedia"); n != "" {
		if _, err := strconv.Atoi(n); err != nil {
			return platform.Message{}, false, api.Errorf(http.StatusBadRequest, "NumMedia must be a number")
		}
	}
	text := form.Get("ButtonPayload")
	if text == "" {
		text = form.Get("Body")
	}
	if strings.TrimSpace(text) == "" {
		return platform.Message{}, false, nil
	}
	return platform.Message{ID: sid, From: from, To: form.Get("To"), Text: text}, true, nil
}

// TwiML renders messages as a messaging TwiML response; none gives an empty
// <Response/>, which sends nothing.
func TwiML(msgs []smf.Message) []byte {
	var b strings.Builder
	b.WriteString(xml.Header[:len(xml.Header)-1])
	if len(msgs) == 0 {
		b.WriteString("<Response/>")
		return []byte(b.String())
	}
	b.WriteString("<Response>")
	for _, m := range msgs {
		b.WriteString("<Message><Body>")
		_ = xml.EscapeText(&b, []byte(smf.Twilio.Fit(m).Text))
		b.WriteString("</Body></Message>")
	}
	b.WriteString("</Response>")
	return []byte(b.String())
}

// Render renders a message as a REST Messages API form to the user's
// channel address ("whatsapp:+91…"), from the connection's Messaging
// Service when it has one, else from its From address.
func Render(conn ivr.Connection, to string, m smf.Message) (platform.Request, error) {
	sid := conn.Settings.Twilio.AccountSID
	if sid == "" {
		return platform.Request{}, errors.New("connection has no account_sid")
	}
	form := url.Values{"To": {to}, "Body": {smf.Twilio.Fit(m).Text}}
	// The sender is exactly one of the Messaging Service and From: the
	// service, when the connection names one, lets Twilio pick the sender
	// from its pool.
	if svc := conn.Settings.Twilio.MessagingServiceSID; svc != "" {
		form.Set("MessagingServiceSid", svc)
	} else {
		from := conn.Settings.Twilio.From
		if from == "" {
			return platform.Request{}, errors.New("connection has no from address or messaging_service_sid")
		}
		if strings.HasPrefix(to, "whatsapp:") && !strings.HasPrefix(from, "whatsapp:") {
			from = "whatsapp:" + from
		}
		form.Set("From", from)
	}
	return platform.Request{
		Path:        "/2010-04-01/Accounts/" + url.PathEscape(sid) + "/Messages.json",
		Body:        []byte(form.Encode()),
		ContentType: "application/x-www-form-urlencoded",
	}, nil
}

// NewSender returns the REST Messages API outbox sender.
func NewSender(http *platform.Sender) *platform.APISender {
	return &platform.APISender{
		HTTP:     http,
		Channel:  Channel,
		Base:     func(conn ivr.Connection) string { return platform.Or(conn.Settings.Twilio.APIURL, DefaultAPIURL) },
		Render:   Render,
		Auth:     authorize,
		Classify: classify,
		Pace:     platform.NewLimiter(DefaultSenderRate, DefaultSenderRate),
	}
}

func authorize(conn ivr.Connection, req *http.Request) error {
	if conn.Settings.Twilio.AccountSID == "" || !conn.Settings.Twilio.AuthToken.IsSet() {
		return errors.New("connection has no account_sid or auth_token")
	}
	req.SetBasicAuth(conn.Settings.Twilio.AccountSID, conn.Settings.Twilio.AuthToken.Reveal())
	return nil
}

// classify reads Twilio's REST error body {"code":20429,"message":…}:
// 20429 (too many concurrent requests) and 63017/63018 (rate limits) retry
// as rate_limited; 20003 (authentication) is final.
func classify(_ int, _ http.Header, body []byte) (string, string, time.Duration) {
	var e struct {
		Code int `json:"code"`
	}
	if json.Unmarshal(body, &e) != nil || e.Code == 0 {
		return "", "", 0
	}
	code := fmt.Sprint(e.Code)
	switch e.Code {
	case 20429, 63017, 63018:
		return code, platform.ClassRateLimited, 0
	case 20003, 20005:
		return code, platform.ClassAuth, 0
	}
	return code, "", 0
}
