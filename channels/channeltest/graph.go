package channeltest

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// graphError is Graph's error body.
func graphError(code int, typ, msg string) string {
	return fmt.Sprintf(`{"error":{"message":%q,"type":%q,"code":%d,"fbtrace_id":"AbCdEf123"}}`, msg, typ, code)
}

// GraphRateLimited is the Send API's answer when a page sends too fast
// (code 613, with HTTP 400 as Graph does).
var GraphRateLimited = Failure{Status: http.StatusBadRequest, Body: graphError(613, "OAuthException", "Calls to this api have exceeded the rate limit.")}

// MessengerSend is the Send API body the fake accepts: every field koel may
// send, nothing else.
type MessengerSend struct {
	Recipient struct {
		ID string `json:"id"`
	} `json:"recipient"`
	MessagingType string `json:"messaging_type"`
	Tag           string `json:"tag,omitempty"`
	Message       struct {
		Text         string `json:"text,omitempty"`
		QuickReplies []struct {
			ContentType string `json:"content_type"`
			Title       string `json:"title"`
			Payload     string `json:"payload"`
			ImageURL    string `json:"image_url,omitempty"`
		} `json:"quick_replies,omitempty"`
		Attachment *struct {
			Type    string `json:"type"`
			Payload struct {
				TemplateType string `json:"template_type"`
				Text         string `json:"text"`
				Buttons      []struct {
					Type    string `json:"type"`
					Title   string `json:"title"`
					Payload string `json:"payload,omitempty"`
					URL     string `json:"url,omitempty"`
				} `json:"buttons"`
			} `json:"payload"`
		} `json:"attachment,omitempty"`
		Metadata string `json:"metadata,omitempty"`
	} `json:"message"`
}

// CloudSend is the WhatsApp Cloud API /messages body the fake accepts.
type CloudSend struct {
	MessagingProduct string `json:"messaging_product"`
	RecipientType    string `json:"recipient_type,omitempty"`
	To               string `json:"to"`
	Type             string `json:"type"`
	Context          *struct {
		MessageID string `json:"message_id"`
	} `json:"context,omitempty"`
	Text *struct {
		Body       string `json:"body"`
		PreviewURL bool   `json:"preview_url,omitempty"`
	} `json:"text,omitempty"`
	Interactive *struct {
		Type string `json:"type"`
		Body struct {
			Text string `json:"text"`
		} `json:"body"`
		Action struct {
			Buttons []struct {
				Type  string `json:"type"`
				Reply struct {
					ID    string `json:"id"`
					Title string `json:"title"`
				} `json:"reply"`
			} `json:"buttons"`
		} `json:"action"`
	} `json:"interactive,omitempty"`
}

var cloudPath = regexp.MustCompile(`^/(v\d+\.\d+/)?([0-9]+)/messages$`)
var messengerPath = regexp.MustCompile(`^/(v\d+\.\d+/)?(me|[0-9]+)/messages$`)

// NewGraph starts a fake Graph API accepting the Send API
// (POST [/vX.Y]/me/messages or /{page-id}/messages) and the WhatsApp Cloud
// API (POST [/vX.Y]/{phone-number-id}/messages, phoneNumberID only), both
// with token as bearer token or access_token query value.
func NewGraph(t testing.TB, token, phoneNumberID string) *Platform {
	check := func(r *http.Request, body []byte) (int, string) {
		if r.Method != http.MethodPost {
			return http.StatusMethodNotAllowed, graphError(100, "GraphMethodException", "Unsupported method")
		}
		got := r.URL.Query().Get("access_token")
		if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
			got = strings.TrimPrefix(h, "Bearer ")
		}
		if got == "" {
			return http.StatusBadRequest, graphError(2500, "OAuthException", "An active access token must be used to query information about the current user.")
		}
		if got != token {
			return http.StatusUnauthorized, graphError(190, "OAuthException", "Invalid OAuth access token - Cannot parse access token")
		}
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			return http.StatusBadRequest, graphError(100, "OAuthException", "content type must be application/json")
		}
		if m := cloudPath.FindStringSubmatch(r.URL.Path); m != nil && m[2] == phoneNumberID && phoneNumberID != "" {
			return checkCloud(body)
		}
		if messengerPath.MatchString(r.URL.Path) {
			return checkMessenger(body)
		}
		return http.StatusNotFound, graphError(803, "OAuthException", "Unknown path components: "+r.URL.Path)
	}
	accept := func(r *http.Request, _ []byte, n int) (int, string) {
		if m := cloudPath.FindStringSubmatch(r.URL.Path); m != nil && m[2] == phoneNumberID {
			return http.StatusOK, fmt.Sprintf(`{"messaging_product":"whatsapp","contacts":[{"input":"x","wa_id":"x"}],"messages":[{"id":"wamid.fake%d"}]}`, n)
		}
		return http.StatusOK, fmt.Sprintf(`{"recipient_id":"x","message_id":"m_fake%d"}`, n)
	}
	return newPlatform(t, check, accept)
}

func checkMessenger(body []byte) (int, string) {
	var s MessengerSend
	bad := func(msg string) (int, string) { return http.StatusBadRequest, graphError(100, "OAuthException", msg) }
	if err := strictJSON(body, &s); err != nil {
		return bad("(#100) " + err.Error())
	}
	switch {
	case s.Recipient.ID == "":
		return bad("(#100) The parameter recipient is required")
	case s.MessagingType != "RESPONSE" && s.MessagingType != "UPDATE" && s.MessagingType != "MESSAGE_TAG":
		return bad("(#100) messaging_type is required")
	case (s.Message.Text == "") == (s.Message.Attachment == nil):
		return bad("(#100) Exactly one of text or attachment must be set")
	case runeLen(s.Message.Text) > 2000:
		return bad("(#100) Length of param message[text] must be less than or equal to 2000")
	case len(s.Message.QuickReplies) > 13:
		return bad("(#100) param message[quick_replies] must have at most 13 elements")
	}
	for _, q := range s.Message.QuickReplies {
		if q.ContentType != "text" || q.Title == "" || runeLen(q.Title) > 20 || q.Payload == "" || len(q.Payload) > 1000 {
			return bad("(#100) invalid quick reply")
		}
	}
	if a := s.Message.Attachment; a != nil {
		if a.Type != "template" || a.Payload.TemplateType != "button" || len(a.Payload.Buttons) == 0 || len(a.Payload.Buttons) > 3 || runeLen(a.Payload.Text) > 640 {
			return bad("(#100) invalid button template")
		}
	}
	return 0, ""
}

func checkCloud(body []byte) (int, string) {
	var s CloudSend
	bad := func(msg string) (int, string) { return http.StatusBadRequest, graphError(100, "OAuthException", msg) }
	if err := strictJSON(body, &s); err != nil {
		return bad("(#100) " + err.Error())
	}
	switch {
	case s.MessagingProduct != "whatsapp":
		return bad("(#100) The parameter messaging_product is required.")
	case s.To == "":
		return bad("(#100) The parameter to is required.")
	case s.Type == "text" && (s.Text == nil || s.Text.Body == "" || runeLen(s.Text.Body) > 4096 || s.Interactive != nil):
		return bad("(#100) Param text['body'] is required and at most 4096 characters")
	case s.Type == "interactive" && (s.Interactive == nil || s.Interactive.Type != "button" || s.Text != nil):
		return bad("(#100) interactive button message required")
	case s.Type != "text" && s.Type != "interactive":
		return bad("(#100) unsupported type " + s.Type)
	}
	if i := s.Interactive; i != nil {
		if i.Body.Text == "" || runeLen(i.Body.Text) > 1024 || len(i.Action.Buttons) == 0 || len(i.Action.Buttons) > 3 {
			return bad("(#131009) Parameter value is not valid")
		}
		for _, b := range i.Action.Buttons {
			if b.Type != "reply" || b.Reply.ID == "" || len(b.Reply.ID) > 256 || b.Reply.Title == "" || runeLen(b.Reply.Title) > 20 {
				return bad("(#131009) Parameter value is not valid")
			}
		}
	}
	return 0, ""
}
