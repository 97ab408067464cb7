package sim

import (
	"fmt"
	"strings"
	"sync"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Payload types the sim offers and answers with. PCMU is static (RFC 3551);
// 101 is the customary dynamic type for telephone-event.
const (
	ptPCMU           = 0
	ptTelephoneEvent = 101
	clockRate        = 8000
)

// newMediaEngine registers PCMU and telephone-event/8000 only.
func newMediaEngine() (*webrtc.MediaEngine, error) {
	me := &webrtc.MediaEngine{}
	codecs := []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: clockRate, Channels: 1}, PayloadType: ptPCMU},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/telephone-event", ClockRate: clockRate, Channels: 1, SDPFmtpLine: "0-15"}, PayloadType: ptTelephoneEvent},
	}
	for _, c := range codecs {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, fmt.Errorf("sim: register codec %s: %w", c.MimeType, err)
		}
	}
	return me, nil
}

// rtpTrack is a local audio track that writes PCMU frames and RFC 4733
// telephone-events on one SSRC with one timestamp clock, which pion's static
// tracks cannot do (they rewrite the payload type).
type rtpTrack struct {
	id, streamID string

	mu      sync.Mutex
	w       webrtc.TrackLocalWriter
	ssrc    uint32
	pcmuPT  uint8
	eventPT uint8
	hasDTMF bool
	seq     uint16
	ts      uint32
	marker  bool
}

var _ webrtc.TrackLocal = (*rtpTrack)(nil)

func newRTPTrack(id, streamID string, seed uint32) *rtpTrack {
	return &rtpTrack{id: id, streamID: streamID, seq: uint16(seed), ts: seed * 7919, marker: true}
}

// Bind implements webrtc.TrackLocal: it picks the negotiated PCMU codec and
// remembers telephone-event's payload type when negotiated.
func (t *rtpTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	var pcmu *webrtc.RTPCodecParameters
	var eventPT uint8
	var hasDTMF bool
	for _, c := range ctx.CodecParameters() {
		switch {
		case strings.EqualFold(c.MimeType, webrtc.MimeTypePCMU) && pcmu == nil:
			c := c
			pcmu = &c
		case strings.EqualFold(c.MimeType, "audio/telephone-event") && c.ClockRate == clockRate:
			eventPT, hasDTMF = uint8(c.PayloadType), true
		}
	}
	if pcmu == nil {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.w = ctx.WriteStream()
	t.ssrc = uint32(ctx.SSRC())
	t.pcmuPT = uint8(pcmu.PayloadType)
	t.eventPT, t.hasDTMF = eventPT, hasDTMF
	return *pcmu, nil
}

// Unbind implements webrtc.TrackLocal.
func (t *rtpTrack) Unbind(webrtc.TrackLocalContext) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.w = nil
	return nil
}

// ID implements webrtc.TrackLocal.
func (t *rtpTrack) ID() string { return t.id }

// RID implements webrtc.TrackLocal.
func (t *rtpTrack) RID() string { return "" }

// StreamID implements webrtc.TrackLocal.
func (t *rtpTrack) StreamID() string { return t.streamID }

// Kind implements webrtc.TrackLocal.
func (t *rtpTrack) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeAudio }

// writeAudio sends one PCMU frame and advances the clock by its length.
// Frames written before negotiation completes are dropped.
func (t *rtpTrack) writeAudio(ulaw []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := rtp.Header{Version: 2, PayloadType: t.pcmuPT, SequenceNumber: t.seq, Timestamp: t.ts, SSRC: t.ssrc, Marker: t.marker}
	t.ts += uint32(len(ulaw))
	if t.w == nil {
		return nil
	}
	t.seq++
	t.marker = false
	if _, err := t.w.WriteRTP(&h, ulaw); err != nil {
		return fmt.Errorf("sim: write rtp: %w", err)
	}
	return nil
}

// writeEvent sends one telephone-event packet of an event that started at
// the current timestamp (RFC 4733 §2.5.1). When the packet carries the end
// bit and last is true, the clock moves past the event's duration.
func (t *rtpTrack) writeEvent(ev telephoneEvent, first, last bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.w == nil || !t.hasDTMF {
		if last {
			t.ts += uint32(ev.Duration)
		}
		return nil
	}
	h := rtp.Header{Version: 2, PayloadType: t.eventPT, SequenceNumber: t.seq, Timestamp: t.ts, SSRC: t.ssrc, Marker: first}
	t.seq++
	if last {
		t.ts += uint32(ev.Duration)
	}
	if _, err := t.w.WriteRTP(&h, ev.marshal()); err != nil {
		return fmt.Errorf("sim: write telephone-event: %w", err)
	}
	return nil
}
