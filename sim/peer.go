package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/koelvoice/koel/audio"
)

const (
	// eventChannelLabel is the DataChannel the offerer creates for events.
	eventChannelLabel = "koel"
	// maxSDPBytes caps an SDP offer.
	maxSDPBytes = 32 << 10
	// gatherTimeout bounds ICE gathering for the non-trickle answer.
	gatherTimeout = 5 * time.Second
	// connectTimeout bounds the wait for the media leg to connect.
	connectTimeout = 15 * time.Second
	// maxControlBytes caps a DataChannel control message.
	maxControlBytes = 1024
)

// newAPI builds the pion API both ends use: PCMU and telephone-event only,
// RTCP sender/receiver reports, host candidates (loopback included, so
// calls work on machines without another interface), short ICE timeouts so
// a vanished peer is noticed in seconds.
func newAPI(log *slog.Logger) (*webrtc.API, error) {
	me, err := newMediaEngine()
	if err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, fmt.Errorf("sim: rtcp reports: %w", err)
	}
	se := webrtc.SettingEngine{LoggerFactory: pionLoggerFactory{log: log}}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICETimeouts(3*time.Second, 6*time.Second, time.Second)
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// checkOffer parses an SDP offer and checks that it offers PCMU audio.
func checkOffer(raw string) error {
	if len(raw) == 0 {
		return fmt.Errorf("%w: empty", ErrBadOffer)
	}
	if len(raw) > maxSDPBytes {
		return fmt.Errorf("%w: %d bytes (limit %d)", ErrBadOffer, len(raw), maxSDPBytes)
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(raw); err != nil {
		return fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media != "audio" || m.MediaName.Port.Value == 0 {
			continue
		}
		for _, f := range m.MediaName.Formats {
			if f == "0" {
				return nil
			}
		}
		for _, a := range m.Attributes {
			if a.Key == "rtpmap" && strings.Contains(strings.ToUpper(a.Value), "PCMU/8000") {
				return nil
			}
		}
	}
	return ErrNoAudio
}

// controlMessage is what a caller sends on the event DataChannel.
type controlMessage struct {
	Type   string `json:"type"`             // "hangup" or "dtmf"
	Digits string `json:"digits,omitempty"` // for "dtmf"
}

// parseControl decodes a control message; unknown types are an error.
func parseControl(b []byte) (controlMessage, error) {
	if len(b) > maxControlBytes {
		return controlMessage{}, fmt.Errorf("%w: control message of %d bytes", ErrBadRequest, len(b))
	}
	var m controlMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return controlMessage{}, fmt.Errorf("%w: control message: %w", ErrBadRequest, err)
	}
	switch m.Type {
	case "hangup":
	case "dtmf":
		if m.Digits == "" || len(m.Digits) > 32 || !validDigits(m.Digits) {
			return controlMessage{}, fmt.Errorf("%w: control message: bad digits %q", ErrBadRequest, m.Digits)
		}
	default:
		return controlMessage{}, fmt.Errorf("%w: control message type %q", ErrBadRequest, m.Type)
	}
	return m, nil
}

// leg is one media leg: a peer connection, the outgoing pacer, the
// incoming audio/DTMF reader and the event DataChannel. Its callbacks turn
// into sends on frames, digits and ended; the owner's goroutine reads them.
type leg struct {
	pc     *webrtc.PeerConnection
	track  *rtpTrack
	pacer  *pacer
	log    *slog.Logger
	frames chan []int16
	digits chan rune
	notes  chan playNote
	events chan Event

	connected chan struct{}
	ended     chan struct{}

	mu       sync.Mutex
	closing  bool
	cause    error
	wg       sync.WaitGroup
	dropped  int
	endOnce  sync.Once
	connOnce sync.Once
	dcOpen   chan *webrtc.DataChannel
	flushReq chan chan struct{}
	onFrame  func(pcm []int16) // optional tap (client: bot audio); it must copy what it keeps
	// onPacket, when set, is told of every RTP packet read and of the
	// packets missing before it by sequence number (server legs: metrics).
	onPacket func(lost int)
}

func newLeg(pc *webrtc.PeerConnection, log *slog.Logger, seed uint32) *leg {
	l := &leg{
		pc:        pc,
		track:     newRTPTrack("audio", "koel", seed),
		log:       log,
		frames:    make(chan []int16, 256),
		digits:    make(chan rune, 64),
		notes:     make(chan playNote, 64),
		events:    make(chan Event, 256),
		connected: make(chan struct{}),
		ended:     make(chan struct{}),
		dcOpen:    make(chan *webrtc.DataChannel, 1),
		flushReq:  make(chan chan struct{}),
	}
	l.pacer = newPacer(l.track, l.note)
	return l
}

// note is the pacer's notification hook: a send the owner always drains.
func (l *leg) note(n playNote) {
	select {
	case l.notes <- n:
	case <-l.ended:
	}
}

// end records why the leg ended (first cause wins) and wakes the owner.
func (l *leg) end(cause error) {
	l.endOnce.Do(func() {
		l.mu.Lock()
		l.cause = cause
		l.mu.Unlock()
		close(l.ended)
	})
}

// endCause reports why the leg ended, nil while it is up.
func (l *leg) endCause() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cause
}

// goTracked runs f on a goroutine that close waits for, unless the leg is
// closing (pion may call back after close started).
func (l *leg) goTracked(f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return false
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f()
	}()
	return true
}

// wire installs the pion callbacks. It runs before negotiation.
func (l *leg) wire() {
	l.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			l.connOnce.Do(func() { close(l.connected) })
		case webrtc.PeerConnectionStateFailed:
			l.end(fmt.Errorf("%w: ice/dtls failed", ErrMediaFailed))
		case webrtc.PeerConnectionStateClosed:
			l.end(ErrCallerHangup)
		}
	})
	l.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeAudio {
			return
		}
		l.goTracked(func() { l.readTrack(tr) })
	})
	l.pc.OnDataChannel(func(dc *webrtc.DataChannel) { l.attachDataChannel(dc) })
}

// attachDataChannel adopts the event DataChannel: control messages in,
// events out once it is open; closing it hangs up.
func (l *leg) attachDataChannel(dc *webrtc.DataChannel) {
	if dc.Label() != eventChannelLabel {
		return
	}
	dc.OnOpen(func() {
		select {
		case l.dcOpen <- dc:
		default:
		}
	})
	dc.OnClose(func() { l.end(ErrCallerHangup) })
	dc.OnMessage(func(msg webrtc.DataChannelMessage) {
		m, err := parseControl(msg.Data)
		if err != nil {
			l.log.Debug("ignored control message", "err", err)
			return
		}
		switch m.Type {
		case "hangup":
			l.end(ErrCallerHangup)
		case "dtmf":
			for _, r := range m.Digits {
				select {
				case l.digits <- r:
				default:
				}
			}
		}
	})
}

// readTrack decodes the remote audio into 20 ms frames and DTMF keys.
func (l *leg) readTrack(tr *webrtc.TrackRemote) {
	pcmuPT := uint8(tr.Codec().PayloadType)
	var det dtmfDetector
	buf := make([]int16, 0, audio.FrameSamples)
	dec := make([]int16, 1500)
	var lastSeq uint16
	seen := false
	// One packet buffer for the call (ReadRTP would allocate one per
	// packet: 70 % of an echo server's allocations).
	raw := make([]byte, 1500)
	pkt := &rtp.Packet{}
	for {
		n, _, err := tr.Read(raw)
		if err != nil {
			return
		}
		if err := pkt.Unmarshal(raw[:n]); err != nil {
			continue
		}
		if l.onPacket != nil {
			lost := 0
			// A gap of less than 1000 is loss; larger jumps are a restart
			// or reordering, not counted.
			if gap := pkt.SequenceNumber - lastSeq; seen && gap > 1 && gap < 1000 {
				lost = int(gap) - 1
			}
			lastSeq, seen = pkt.SequenceNumber, true
			l.onPacket(lost)
		}
		switch {
		case pkt.PayloadType == pcmuPT && tr.Codec().MimeType == webrtc.MimeTypePCMU, pkt.PayloadType == ptPCMU:
			if len(pkt.Payload) > len(dec) {
				continue
			}
			n := audio.DecodeUlaw(dec, pkt.Payload)
			for _, s := range dec[:n] {
				buf = append(buf, s)
				if len(buf) == audio.FrameSamples {
					if l.deliver(buf) {
						buf = make([]int16, 0, audio.FrameSamples)
					} else {
						buf = buf[:0]
					}
				}
			}
		default:
			key, ok, err := det.packet(pkt.Timestamp, pkt.Payload)
			if err != nil || !ok {
				continue
			}
			select {
			case l.digits <- key:
			default:
			}
		}
	}
}

// deliver hands a frame to the tap or the owner; it reports whether the
// frame was kept (else the reader may reuse its buffer: a tap must not
// keep the slice).
func (l *leg) deliver(frame []int16) bool {
	if l.onFrame != nil {
		l.onFrame(frame)
		return false
	}
	select {
	case l.frames <- frame:
		return true
	default:
		l.mu.Lock()
		l.dropped++
		l.mu.Unlock()
		return false
	}
}

// sendEvents forwards events to the DataChannel once it opens; events
// before that wait in the channel buffer. It returns when ctx ends.
func (l *leg) sendEvents(ctx context.Context) {
	var dc *webrtc.DataChannel
	send := func(ev Event) bool {
		b, err := json.Marshal(ev)
		if err != nil {
			return true
		}
		if err := dc.SendText(string(b)); err != nil {
			l.log.Debug("event channel send failed", "err", err)
			return false
		}
		return true
	}
	for {
		var in chan Event
		if dc != nil {
			in = l.events
		}
		select {
		case d := <-l.dcOpen:
			dc = d
		case ev := <-in:
			if !send(ev) {
				dc = nil
			}
		case reply := <-l.flushReq:
			for dc != nil && len(l.events) > 0 {
				if !send(<-l.events) {
					dc = nil
				}
			}
			close(reply)
		case <-ctx.Done():
			return
		}
	}
}

// emit queues an event for the caller's UI; it never blocks (a full
// buffer drops the event: the UI is best effort, the call is not).
func (l *leg) emit(ev Event) {
	select {
	case l.events <- ev:
	default:
	}
}

// flushEvents waits, up to d, until queued events have been handed to the
// DataChannel, so the last events of a call reach the caller before close.
func (l *leg) flushEvents(ctx context.Context, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	reply := make(chan struct{})
	select {
	case l.flushReq <- reply:
	case <-ctx.Done():
		return
	}
	select {
	case <-reply:
	case <-ctx.Done():
	}
}

// close tears the leg down and waits for its goroutines.
func (l *leg) close() error {
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
	l.end(ErrCallerHangup)
	err := l.pc.Close()
	l.wg.Wait()
	if err != nil && !errors.Is(err, webrtc.ErrConnectionClosed) {
		return fmt.Errorf("sim: close peer connection: %w", err)
	}
	return nil
}

// drainRTCP reads RTCP for a sender so interceptors run, until close.
func drainRTCP(s *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := s.Read(buf); err != nil {
			return
		}
	}
}
