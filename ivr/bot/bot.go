// Package bot defines what koel asks of a bot: a reply to one user message.
//
// Implementations live in sub-packages: [github.com/koelvoice/koel/ivr/bot/faq]
// answers from a business's FAQ nodes; [github.com/koelvoice/koel/ivr/bot/remote]
// forwards to an external bot speaking the Rasa REST-webhook format.
package bot

import (
	"context"
	"errors"
)

// ErrUnavailable means the bot could not answer (remote bot down, FAQ not
// loadable). The engine answers with the connection's break message.
var ErrUnavailable = errors.New("bot: unavailable")

// Bot answers one user message. Implementations are safe for concurrent use
// and honour ctx's deadline.
type Bot interface {
	Reply(ctx context.Context, req Request) (Response, error)
}

// Request is one user message for a bot.
type Request struct {
	BusinessID int64
	// UserID is a stable id of the user within the business (the sender id
	// remote bots see).
	UserID string
	// ConversationID identifies the conversation, for bots that keep state.
	ConversationID int64
	Text           string
	// Voice is true when Text is a transcript of speech.
	Voice bool
	// Alternatives are the recogniser's N-best hypotheses for a voice
	// message, best first, with posteriors normalized to sum to 1; the
	// first one's Text equals Text. Empty when the recogniser gave only one
	// string (or for text); bots then use Text alone.
	Alternatives []Alternative
	// Lattice is the recogniser's word-lattice evidence for a voice
	// message: each vocabulary word with its expected count, highest
	// first. It carries words no alternative has. Empty when the
	// recogniser gave none; bots may ignore it.
	Lattice []WordCount
}

// WordCount is one word of a voice [Request]'s lattice and how many times
// the caller said it in expectation (the sum of the posteriors of the
// lattice links carrying it; above 1 for a word said twice).
type WordCount struct {
	Word  string
	Count float64
}

// Alternative is one recognition hypothesis of a voice [Request].
type Alternative struct {
	// Text is the hypothesis, lower case.
	Text string
	// Weight is its normalized posterior in [0, 1].
	Weight float64
}

// Message is one message of a bot's reply.
type Message struct {
	Text         string   `json:"text"`
	QuickReplies []string `json:"quick_replies"`
}

// Response is a bot's reply to one [Request].
type Response struct {
	Messages []Message
	// Node is the FAQ node that answered; empty for the fallback or a
	// remote bot.
	Node string
	// Confidence is the match score in [0, 1].
	Confidence float64
	// Support is how many of the text's content words (not function words
	// or fillers) the answering node's phrases use: the words its match
	// rests on. Words is how many distinct content words the text has.
	// Both are 0 when the bot does not say (a remote bot, the fallback).
	Support, Words int
	// Handoff is true when the user asked for a human agent.
	Handoff bool
	// Fallback is true when the bot did not understand and answered with
	// the business's fallback message.
	Fallback bool
	// Topic is a short human title of the answering FAQ node (for example
	// "delivery charges"), for a confirmation prompt such as "Do you want
	// to know about delivery charges?". Empty when Node is empty.
	Topic string
	// Collect is set when the reply asks the user for a value (an order
	// number) that the user's next message carries: a voice caller may
	// key it instead of saying it.
	Collect *Collect
}

// Collect describes the value a [Response] asks for.
type Collect struct {
	// MaxDigits is the most keys a caller may press for the value.
	MaxDigits int
}

// Vocabulary is implemented by bots that know the phrases their users say,
// so speech recognition can be restricted to them.
type Vocabulary interface {
	// Phrases returns the phrases users of the business are expected to
	// say and a version that changes whenever they change.
	Phrases(ctx context.Context, businessID int64) (phrases []string, version int64, err error)
}
