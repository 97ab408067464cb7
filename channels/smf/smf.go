// Package smf is koel's Standard Message Format on the way out: a bot
// message (text, quick replies, buttons) fitted to each platform's limits
// before an adapter renders it in the platform's own shape.
//
// Platforms that have quick replies get them as such (Messenger quick
// replies, WhatsApp reply buttons, webchat quick replies), cut to the
// platform's count and title limits; platforms that have none (SMS-like
// WhatsApp BSP text, Jio) get them appended to the text as a numbered list,
// so the choices are never silently lost. Text is cut at a rune boundary
// with an ellipsis, never mid-character.
package smf

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/outbox"
)

// QuickReply is one suggested answer: Title is shown, Payload comes back
// when it is tapped.
type QuickReply struct {
	Title   string
	Payload string
}

// Button is one button of a message: a postback (Payload comes back) or a
// web link (URL).
type Button struct {
	Type    string // ButtonPostback or ButtonURL
	Title   string
	Payload string
	URL     string
}

// Button types.
const (
	ButtonPostback = "postback"
	ButtonURL      = "web_url"
)

// Message is one outgoing message in the Standard Message Format.
type Message struct {
	Text         string
	QuickReplies []QuickReply
	Buttons      []Button
}

// FromStored returns the Standard Message Format of a stored bot message.
// koel's bots answer quick replies as plain strings; each becomes a quick
// reply whose payload is its title, so a tap reads to the bot exactly like
// typing it.
func FromStored(m *ivr.Message) Message {
	out := Message{Text: m.Text}
	for _, q := range m.QuickReplies {
		if q = strings.TrimSpace(q); q != "" {
			out.QuickReplies = append(out.QuickReplies, QuickReply{Title: q, Payload: q})
		}
	}
	return out
}

// Limits are one platform's message limits; 0 means "not supported" for
// counts and "no limit" for lengths.
type Limits struct {
	// MaxText caps the text (characters).
	MaxText int
	// MaxQuickReplies and MaxQuickReplyTitle cap quick replies; with
	// MaxQuickReplies 0 they are appended to the text instead.
	MaxQuickReplies    int
	MaxQuickReplyTitle int
	// MaxPayload caps a quick reply's or a button's payload (bytes).
	MaxPayload int
	// MaxButtons and MaxButtonTitle cap buttons; with MaxButtons 0 they are
	// appended to the text instead.
	MaxButtons     int
	MaxButtonTitle int
}

// Platform limits, from each platform's documentation (spec/channels.md).
var (
	// Messenger: text 2000, 13 quick replies of 20 characters, payloads of
	// 1000, 3 postback buttons of 20.
	Messenger = Limits{MaxText: 2000, MaxQuickReplies: 13, MaxQuickReplyTitle: 20, MaxPayload: 1000, MaxButtons: 3, MaxButtonTitle: 20}
	// WhatsAppInteractive: reply-button messages of the Cloud API: body
	// 1024, 3 buttons of 20 characters, ids of 256.
	WhatsAppInteractive = Limits{MaxText: 1024, MaxQuickReplies: 3, MaxQuickReplyTitle: 20, MaxPayload: 256}
	// WhatsAppText: a plain WhatsApp text message, 4096 characters.
	WhatsAppText = Limits{MaxText: 4096}
	// Twilio: a message body, 1600 characters.
	Twilio = Limits{MaxText: 1600}
	// Jio: 1600 characters per message part.
	Jio = Limits{MaxText: 1600}
	// Webchat: the other-channels API; 13 quick replies, 3 buttons.
	Webchat = Limits{MaxText: 4096, MaxQuickReplies: 13, MaxQuickReplyTitle: 80, MaxPayload: 1000, MaxButtons: 3, MaxButtonTitle: 80}
)

// Fit returns m within l: unsupported quick replies and buttons are folded
// into the text as a numbered list, counts and lengths are cut.
func (l Limits) Fit(m Message) Message {
	out := Message{Text: m.Text}
	var listed []string
	if l.MaxButtons == 0 {
		for _, b := range m.Buttons {
			if b.Type == ButtonURL {
				listed = append(listed, b.Title+": "+b.URL)
			} else {
				listed = append(listed, b.Title)
			}
		}
	} else {
		for _, b := range m.Buttons {
			if len(out.Buttons) == l.MaxButtons {
				break
			}
			b.Title = Truncate(b.Title, l.MaxButtonTitle)
			b.Payload = truncateBytes(b.Payload, l.MaxPayload)
			out.Buttons = append(out.Buttons, b)
		}
	}
	if l.MaxQuickReplies == 0 {
		for _, q := range m.QuickReplies {
			listed = append(listed, q.Title)
		}
	} else {
		for _, q := range m.QuickReplies {
			if len(out.QuickReplies) == l.MaxQuickReplies {
				break
			}
			q.Title = Truncate(q.Title, l.MaxQuickReplyTitle)
			q.Payload = truncateBytes(q.Payload, l.MaxPayload)
			out.QuickReplies = append(out.QuickReplies, q)
		}
	}
	if len(listed) > 0 {
		var b strings.Builder
		b.WriteString(out.Text)
		b.WriteString("\n")
		for i, s := range listed {
			b.WriteString("\n")
			b.WriteString(strconv.Itoa(i + 1))
			b.WriteString(". ")
			b.WriteString(s)
		}
		out.Text = b.String()
	}
	out.Text = Truncate(out.Text, l.MaxText)
	return out
}

// Truncate cuts s to at most max characters (runes), ending in "…" when cut;
// max 0 means no limit.
func Truncate(s string, max int) string {
	if max <= 0 || utf8.RuneCountInString(s) <= max {
		return s
	}
	if max == 1 {
		return "…"
	}
	n := 0
	for i := range s {
		if n == max-1 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// truncateBytes cuts s to at most max bytes at a rune boundary; max 0 means
// no limit.
func truncateBytes(s string, max int) string {
	if max <= 0 || len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// FromOutbox returns the Standard Message Format of an outbox reply body.
func FromOutbox(m outbox.Message) Message {
	out := Message{Text: m.Message.Body.Text}
	for _, q := range m.Message.Body.Data.QuickReplies {
		if q = strings.TrimSpace(q); q != "" {
			out.QuickReplies = append(out.QuickReplies, QuickReply{Title: q, Payload: q})
		}
	}
	return out
}
