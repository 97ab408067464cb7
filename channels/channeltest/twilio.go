package channeltest

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func twilioError(status, code int, msg string) (int, string) {
	return status, fmt.Sprintf(`{"code":%d,"message":%q,"more_info":"https://www.twilio.com/docs/errors/%d","status":%d}`, code, msg, code, status)
}

// TwilioTooManyRequests is Twilio's concurrency limit answer (429, 20429).
var TwilioTooManyRequests = Failure{Status: 429, Body: `{"code":20429,"message":"Too Many Requests","status":429}`}

var twilioParams = map[string]bool{"To": true, "From": true, "MessagingServiceSid": true, "Body": true, "MediaUrl": true,
	"ContentSid": true, "ContentVariables": true, "StatusCallback": true}

// NewTwilio starts a fake Twilio REST API accepting
// POST /2010-04-01/Accounts/{sid}/Messages.json with HTTP Basic sid:token.
func NewTwilio(t testing.TB, sid, token string) *Platform {
	path := "/2010-04-01/Accounts/" + sid + "/Messages.json"
	check := func(r *http.Request, body []byte) (int, string) {
		u, p, ok := r.BasicAuth()
		if !ok || u != sid || p != token {
			return twilioError(401, 20003, "Authenticate")
		}
		if r.Method != http.MethodPost || r.URL.Path != path {
			return twilioError(404, 20404, "The requested resource "+r.URL.Path+" was not found")
		}
		if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			return twilioError(400, 21601, "content type must be form-encoded")
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return twilioError(400, 21601, "malformed form")
		}
		for k := range form {
			if !twilioParams[k] {
				return twilioError(400, 21601, "unknown parameter "+k)
			}
		}
		to, from, svc := form.Get("To"), form.Get("From"), form.Get("MessagingServiceSid")
		// Twilio takes From, MessagingServiceSid, or both (a sender of the
		// service's pool): error 21603 says a Messaging Service may be given
		// "either instead of or in addition to a specific 'From'". Neither
		// is 21603; a service SID off the MG… pattern is 21705.
		switch {
		case to == "":
			return twilioError(400, 21604, "A 'To' phone number is required.")
		case from == "" && svc == "":
			return twilioError(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message")
		case form.Has("MessagingServiceSid") && !isMessagingServiceSID(svc):
			return twilioError(400, 21705, "The Messaging Service is invalid")
		case form.Get("Body") == "" && form.Get("MediaUrl") == "" && form.Get("ContentSid") == "":
			return twilioError(400, 21619, "A text message body or media urls must be specified.")
		case runeLen(form.Get("Body")) > 1600:
			return twilioError(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
		case from != "" && strings.HasPrefix(to, "whatsapp:") != strings.HasPrefix(from, "whatsapp:"):
			return twilioError(400, 63007, "Twilio could not find a Channel with the specified From address")
		}
		return 0, ""
	}
	accept := func(_ *http.Request, _ []byte, n int) (int, string) {
		return http.StatusCreated, fmt.Sprintf(`{"sid":"SM%032d","status":"queued","num_segments":"1","error_code":null}`, n)
	}
	return newPlatform(t, check, accept)
}

// isMessagingServiceSID reports whether s has a Messaging Service SID's
// shape: "MG" and 32 hex digits.
func isMessagingServiceSID(s string) bool {
	if len(s) != 34 || !strings.HasPrefix(s, "MG") {
		return false
	}
	for _, c := range s[2:] {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}
