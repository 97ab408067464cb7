package faq

import (
	"context"
	"errors"
	"fmt"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot"
)

// StepMessages reads a conversation's latest messages ([ivr.Message] with
// the node that answered), for [APISteps].
type StepMessages interface {
	ListMessages(ctx context.Context, conversationID int64, limit int) ([]ivr.Message, error)
}

// APISteps is a bot that runs API steps around an inner bot: when the
// node that answered the user last has an API step, the user's next
// message is the value it asked for (an order number) and the answer comes
// from the business's API; otherwise the inner bot answers. The state is
// the conversation's own transcript (the node of the last bot message), so
// it survives a restart and holds across koel nodes.
type APISteps struct {
	Inner    bot.Bot
	Messages StepMessages
	Caller   *APICaller
	// Steps returns a business's API steps by node name.
	Steps func(businessID int64) map[string]APIStep
	// CallerFor, when set, gives a business its own caller (nil: Caller):
	// the demo business's client may reach koel's own fake order API.
	CallerFor func(businessID int64) *APICaller
}

// ErrAPIStepFailed is the error a failed step returns: the engine answers
// it with the break message.
var ErrAPIStepFailed = errors.New("faq: api step failed")

// APINodeSuffix marks the node of a reply that came from an API step.
const APINodeSuffix = "#api"

// Reply implements bot.Bot.
func (a *APISteps) Reply(ctx context.Context, req bot.Request) (bot.Response, error) {
	steps := a.Steps(req.BusinessID)
	if len(steps) == 0 {
		return a.Inner.Reply(ctx, req)
	}
	if req.ConversationID == 0 {
		return a.inner(ctx, req, steps)
	}
	msgs, err := a.Messages.ListMessages(ctx, req.ConversationID, 8)
	if err != nil {
		return bot.Response{}, fmt.Errorf("faq: api step state: %w", err)
	}
	node := ""
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Sender == ivr.SenderBot {
			node = msgs[i].Node
			break
		}
	}
	step, ok := steps[node]
	if !ok {
		return a.inner(ctx, req, steps)
	}
	caller := a.Caller
	if a.CallerFor != nil {
		if c := a.CallerFor(req.BusinessID); c != nil {
			caller = c
		}
	}
	reply, outcome := caller.Call(ctx, step, CollectedValue(req.Text))
	if outcome == APIFailed {
		return bot.Response{}, ErrAPIStepFailed
	}
	return bot.Response{Messages: []bot.Message{{Text: reply}}, Node: node + APINodeSuffix, Confidence: 1}, nil
}

// inner asks the inner bot; an answer from a node with an API step asks
// for the step's value, which a voice caller may key.
func (a *APISteps) inner(ctx context.Context, req bot.Request, steps map[string]APIStep) (bot.Response, error) {
	resp, err := a.Inner.Reply(ctx, req)
	if err != nil {
		return resp, err
	}
	if st, asks := steps[resp.Node]; asks {
		resp.Collect = &bot.Collect{MaxDigits: st.CollectDigits()}
	}
	return resp, nil
}
