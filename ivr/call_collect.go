package ivr

import (
	"strings"
	"time"
)

// Collecting a value by voice.
//
// An answer can ask the caller for a value: the FAQ node of an API step
// ("To track your order, please tell me your order number") sets
// [Recorded].CollectDigits. The call then moves to [CallStateCollecting]
// and plays the answer inside a key collection (KooKoo <collectdtmf>), with
// the hint that the value may be keyed and ended with the terminator:
//
//   - keys: the driver gives the digits to the engine (the API step is
//     called) and steps a [Collected] event with the reply, which is spoken
//     before the call listens again; a failed lookup speaks the break
//     message and counts a failure;
//   - no keys before the timeout: the caller may have said the value
//     during the prompt, which real KooKoo does not record, so it is asked
//     for again in speech ([CollectSayMessage]) and the call records, still
//     collecting; the transcript reaches the engine as any utterance does
//     and the API step reads the value from it.
//
// Speech during the prompt is never silently lost: it is asked for again,
// as after the key menus.

// Prompts and limits of a value collection.
const (
	// CollectKeysHint follows an answer that asks for a value.
	CollectKeysHint = "You can key it in, followed by the hash key."
	// CollectSayMessage asks for the value in speech when no keys came.
	CollectSayMessage = "I did not get any keys. Please say it after the tone."
	// CollectTerminator ends a keyed value.
	CollectTerminator = "#"
	// CollectTimeout is how long the collection waits for a key.
	CollectTimeout = 6 * time.Second
	// MaxCollectKeys caps the keys of one value.
	MaxCollectKeys = 20
)

// Collected is the value a caller keyed while the call collected one
// ([CallStateCollecting]), after the driver gave it to the engine: Reply is
// spoken (an API step's answer, or its not-found reply). FailReason (a Fail*
// constant) is set when the lookup failed: the break message is spoken.
// Handoff is true when an agent owns the conversation.
type Collected struct {
	Digits     string
	Reply      []string
	Node       string
	Handoff    bool
	FailReason string
}

// collect plays reply inside a key collection for a value of up to digits
// keys and moves to CallStateCollecting.
func (c Call) collect(reply []string, digits int, s ConnectionSettings) (Call, []CallAction) {
	next := c
	next.Failures = 0
	next.Repair.Misses = 0
	next.Repair.Pending, next.Repair.Topics = nil, nil
	next.State = CallStateCollecting
	parts := make([]string, 0, len(reply)+1)
	for _, text := range reply {
		if t := strings.TrimSpace(text); t != "" {
			parts = append(parts, t)
		}
	}
	parts = append(parts, CollectKeysHint)
	return next, []CallAction{Menu{
		Prompt:     strings.Join(parts, " "),
		MaxDigits:  min(max(digits, 1), MaxCollectKeys),
		Timeout:    CollectTimeout,
		Terminator: CollectTerminator,
	}}
}

// collecting handles the events of a value collection.
func (c Call) collecting(ev CallEvent, s ConnectionSettings) (Call, []CallAction) {
	switch ev := ev.(type) {
	case Collected:
		next := c
		if ev.FailReason != "" {
			next.Repair.Band = UnderstandingFailed
			next.Failures++
			if next.Failures >= s.MaxFailures {
				return next.hangUp(s, OutcomeFailed, Say{Text: s.BreakMessage})
			}
			return next.listen(s, Say{Text: s.BreakMessage})
		}
		next.Repair.Band = UnderstandingAnswered
		return next.answer(ev.Reply, ev.Handoff, s)
	case DTMF:
		if strings.TrimRight(ev.Digits, "#") == "" {
			// No keys: whatever the caller said during the prompt is
			// asked for again, in speech, without counting a failure.
			return c.listenIn(CallStateCollecting, s, Say{Text: CollectSayMessage})
		}
		// Keys the driver did not look up (nothing to give them to):
		// as keys while listening.
		return c.dtmf(ev, s)
	case Recorded:
		// The value (or a new question) said after the tone.
		return c.recorded(ev, s)
	}
	return c, nil
}
