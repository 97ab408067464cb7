package ivr

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// TracerName is the instrumentation scope of the spans the engine and the
// voice service start.
const TracerName = "github.com/koelvoice/koel/ivr"

// Span names of one turn. A voice turn is SpanVoiceTurn with SpanFetch,
// SpanDecode, SpanSTT and SpanEngineTurn (holding SpanBot) beneath it; a
// text message is SpanEngineTurn with SpanBot beneath it.
const (
	SpanVoiceTurn  = "koel.voice.turn"
	SpanFetch      = "koel.fetch"
	SpanDecode     = "koel.decode"
	SpanSTT        = "koel.stt"
	SpanEngineTurn = "koel.engine.turn"
	SpanBot        = "koel.bot"
	// SpanDelivery is one outbox delivery attempt to a channel's platform
	// (its own trace: a reply is delivered after the turn answered).
	SpanDelivery = "koel.delivery"
)

// Span attribute keys. Spans carry ids koel assigned or the platform's call
// id, never a caller number, a user's platform id or message text.
const (
	AttrCallID         = attribute.Key("koel.call.id")
	AttrConversationID = attribute.Key("koel.conversation.id")
	AttrBusinessID     = attribute.Key("koel.business.id")
	AttrChannel        = attribute.Key("koel.channel")
	AttrTurn           = attribute.Key("koel.turn")
	AttrResult         = attribute.Key("koel.result")
	AttrOutboxItemID   = attribute.Key("koel.outbox.item_id")
	AttrAttempt        = attribute.Key("koel.outbox.attempt")
)

// tracerFrom returns tp's tracer for the package, or a no-op tracer when tp
// is nil (tracing off: spans cost nothing).
func tracerFrom(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(TracerName)
}
