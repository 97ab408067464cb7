package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/koelvoice/koel/audio"
)

// clientConfig configures a softphone client (the CLI, tests, benchmarks).
type clientConfig struct {
	Server        string // the koel server's base URL
	Connection    string
	AppURL        string
	SilencePeriod float64
	MaxRecordTime float64
	Caller        string
	// Token is sent as Authorization: Bearer (outside development mode).
	Token              string
	Strict             bool
	DialOutcome        string
	DialDuration       float64
	ConferenceDuration float64
	HTTPClient         *http.Client
	Logger             *slog.Logger
	// Echo calls the echo app (no Connection or AppURL).
	Echo bool
	// onFrame, when set, receives what the caller hears instead of the
	// client keeping it (an echo call checks each frame as it arrives).
	onFrame func(pcm []int16)
	// source, when set, is the caller pacer's frame source (see
	// pacer.source): an echo caller's numbered frames.
	source func(now time.Time) []int16
	// clock, when set, sends the caller's frames (see FrameClock); nil:
	// a pacer of its own.
	clock *FrameClock
}

// client is a pion offerer that talks to a Sim like the page does.
type client struct {
	leg    *leg
	dc     *webrtc.DataChannel
	events chan Event
	callID string
	sid    string
	cancel context.CancelFunc

	mu  sync.Mutex
	bot []int16 // everything the caller heard, in order
	// firstAudio is when the first non-silent frame arrived after mark.
	mark       time.Time
	firstAudio time.Time
}

// maxBotAudio caps what a client keeps of the bot's audio (1 hour).
const maxBotAudio = 3600 * audio.SampleRate

// dialSim makes a call to a Sim: offer, POST /sim/offer, answer.
func dialSim(ctx context.Context, api *webrtc.API, cfg clientConfig) (*client, error) {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("sim client: new peer connection: %w", err)
	}
	l := newLeg(pc, cfg.Logger, randomUint32())
	c := &client{leg: l, events: make(chan Event, 1024)}
	l.onFrame = c.heard
	if cfg.onFrame != nil {
		l.onFrame = cfg.onFrame
	}
	l.pacer.source = cfg.source
	l.pacer.clock = cfg.clock
	l.wire()
	fail := func(err error) (*client, error) {
		_ = l.close()
		return nil, err
	}
	tr, err := pc.AddTransceiverFromTrack(l.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
	if err != nil {
		return fail(fmt.Errorf("sim client: add track: %w", err))
	}
	sender := tr.Sender()
	l.goTracked(func() { drainRTCP(sender) })
	ordered := true
	dc, err := pc.CreateDataChannel(eventChannelLabel, &webrtc.DataChannelInit{Ordered: &ordered})
	if err != nil {
		return fail(fmt.Errorf("sim client: data channel: %w", err))
	}
	c.dc = dc
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		var ev Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			return
		}
		select {
		case c.events <- ev:
		default:
		}
	})
	dc.OnClose(func() { l.end(ErrAppHangup) })
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fail(fmt.Errorf("sim client: create offer: %w", err))
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fail(fmt.Errorf("sim client: set local description: %w", err))
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	body, _ := json.Marshal(offerRequest{
		SDP: pc.LocalDescription().SDP, Type: "offer", Connection: cfg.Connection, AppURL: cfg.AppURL,
		SilencePeriod: cfg.SilencePeriod, MaxRecordTime: cfg.MaxRecordTime, Caller: cfg.Caller,
		Strict: cfg.Strict, DialOutcome: cfg.DialOutcome, DialDuration: cfg.DialDuration,
		ConferenceDuration: cfg.ConferenceDuration, Echo: cfg.Echo,
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(cfg.Server, "/")+"/sim/offer", bytes.NewReader(body))
	if err != nil {
		return fail(fmt.Errorf("%w: %w", ErrCallFailed, err))
	}
	req.Header.Set("Content-Type", "application/json")
	if cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.Token)
	}
	resp, err := cfg.HTTPClient.Do(req)
	if err != nil {
		return fail(fmt.Errorf("%w: post offer: %w", ErrCallFailed, err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fail(fmt.Errorf("%w: read answer: %w", ErrCallFailed, err))
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"error_message"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Message == "" {
			e.Message = snippet(raw)
		}
		return fail(fmt.Errorf("%w: server answered %d: %s", ErrCallFailed, resp.StatusCode, e.Message))
	}
	var ans offerResponse
	if err := json.Unmarshal(raw, &ans); err != nil {
		return fail(fmt.Errorf("%w: answer: %w", ErrCallFailed, err))
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: ans.SDP}); err != nil {
		return fail(fmt.Errorf("%w: set answer: %w", ErrCallFailed, err))
	}
	c.callID, c.sid = ans.CallID, ans.SID
	pctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	l.goTracked(func() { l.pacer.run(pctx) })
	return c, nil
}

// heard keeps the bot's audio (reader goroutine).
func (c *client) heard(frame []int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.bot) < maxBotAudio {
		c.bot = append(c.bot, frame...)
	}
	if !c.mark.IsZero() && c.firstAudio.IsZero() && !quiet(frame) {
		c.firstAudio = time.Now()
	}
}

// quiet reports whether a frame is (near) digital silence.
func quiet(frame []int16) bool {
	for _, s := range frame {
		if s > 64 || s < -64 {
			return false
		}
	}
	return true
}

// markReply starts timing the bot's next audio.
func (c *client) markReply() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mark, c.firstAudio = time.Now(), time.Time{}
}

// replyDelay is the time from markReply to the first non-silent frame.
func (c *client) replyDelay() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mark.IsZero() || c.firstAudio.IsZero() {
		return 0, false
	}
	return c.firstAudio.Sub(c.mark), true
}

// botAudio returns a copy of what the caller heard so far.
func (c *client) botAudio() audio.PCM {
	c.mu.Lock()
	defer c.mu.Unlock()
	return audio.PCM{Rate: audio.SampleRate, Samples: append([]int16(nil), c.bot...)}
}

// send plays pcm or keys to the server and waits until they are sent.
func (c *client) send(ctx context.Context, it *playItem) error {
	if !c.leg.pacer.enqueue(ctx, it) {
		return ctx.Err()
	}
	for {
		select {
		case n := <-c.leg.notes:
			if n.id == it.id && !n.started {
				return nil
			}
		case <-c.leg.ended:
			return ErrAppHangup
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// hangup tells the server and closes the call.
func (c *client) hangup() error {
	if c.dc != nil && c.dc.ReadyState() == webrtc.DataChannelStateOpen {
		_ = c.dc.SendText(`{"type":"hangup"}`)
	}
	return c.close()
}

// close tears the client down and waits for its goroutines.
func (c *client) close() error {
	if c.cancel != nil {
		c.cancel()
	}
	err := c.leg.close()
	if errors.Is(err, webrtc.ErrConnectionClosed) {
		return nil
	}
	return err
}
