package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/koelvoice/koel/channels/webhook"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/outbox"
)

// text runs conversations over the bot API or the webhook API.
type text struct {
	cfg  Config
	run  string
	seq  atomic.Int64
	recv *http.Server

	mu      sync.Mutex
	waiting map[string]chan struct{} // auth_id → arrivals
}

func newText(cfg Config) (*text, error) {
	if len(cfg.Texts) == 0 {
		return nil, errors.New("loadgen: the text scenarios need messages (Texts)")
	}
	if cfg.Token == "" {
		return nil, errors.New("loadgen: the text scenarios need the business API token (-token or KOEL_DEMO_TOKEN)")
	}
	t := &text{cfg: cfg, waiting: make(map[string]chan struct{}),
		run: strconv.FormatInt(time.Now().UnixNano()%1e9, 36) + strconv.FormatInt(runSeq.Add(1), 36)}
	if cfg.Scenario == ScenarioWebhook && cfg.WebhookListen != "" {
		ln, err := net.Listen("tcp", cfg.WebhookListen)
		if err != nil {
			return nil, fmt.Errorf("loadgen: webhook receiver: %w", err)
		}
		t.recv = &http.Server{Handler: http.HandlerFunc(t.receive), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = t.recv.Serve(ln) }()
	}
	return t, nil
}

func (t *text) close() {
	if t.recv != nil {
		_ = t.recv.Close()
	}
}

// receive is the integrator's webhook: it hands each reply to the
// conversation waiting for it.
func (t *text) receive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	if t.cfg.WebhookSecret != "" {
		if err := webhook.Verify(t.cfg.WebhookSecret, r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature),
			body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
	}
	m, err := outbox.DecodeMessage(outboxItem(body))
	if err != nil {
		http.Error(w, "not a standard message", http.StatusBadRequest)
		return
	}
	t.mu.Lock()
	ch := t.waiting[m.User.AuthID]
	t.mu.Unlock()
	if ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (t *text) session(ctx context.Context, n int, rec *recorder) error {
	user := fmt.Sprintf("load-%s-%d", t.run, t.seq.Add(1))
	var arrivals chan struct{}
	if t.recv != nil {
		arrivals = make(chan struct{}, 16)
		t.mu.Lock()
		t.waiting[user] = arrivals
		t.mu.Unlock()
		defer func() {
			t.mu.Lock()
			delete(t.waiting, user)
			t.mu.Unlock()
		}()
	}
	for turn := range t.cfg.Turns {
		if time.Now().After(t.cfg.stopAt) {
			break // the run is over
		}
		msg := t.cfg.Texts[(n*t.cfg.Turns+turn)%len(t.cfg.Texts)]
		// A reply's later messages may still be arriving: they belong to
		// the previous turn.
		for drained := false; arrivals != nil && !drained; {
			select {
			case <-arrivals:
			default:
				drained = true
			}
		}
		start := time.Now()
		answered, err := t.send(ctx, user, msg)
		if err != nil {
			return err
		}
		rec.observe("message", time.Since(start))
		if arrivals != nil {
			wait, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
			select {
			case <-arrivals:
				rec.observe("delivered", time.Since(start))
				answered = true
			case <-wait.Done():
				cancel()
				return fmt.Errorf("loadgen: no reply delivered within %v", t.cfg.Timeout)
			}
			cancel()
		}
		rec.turn(answered)
	}
	return nil
}

// send posts one message and reports whether the answer carried a reply
// (the bot API answers with it; the webhook API only acknowledges).
func (t *text) send(ctx context.Context, user, msg string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	var path string
	var body any
	switch t.cfg.Scenario {
	case ScenarioBot:
		path = fmt.Sprintf("/api/bots/%d/converse", t.cfg.BusinessID)
		body = map[string]string{"user_id": user, "text": msg}
	default:
		path = webhook.PathLogMessage
		body = map[string]any{"user": map[string]string{"auth_id": user}, "message_body": msg, "message_type": 0, "business_id": t.cfg.BusinessID}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return false, err
	}
	base := t.cfg.Target
	for len(base) > 0 && base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(b))
	if err != nil {
		return false, fmt.Errorf("loadgen: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+t.cfg.Token)
	if t.cfg.Scenario == ScenarioWebhook {
		req.Header.Set("client-id", t.cfg.ClientID)
	}
	resp, err := t.cfg.Client.Do(req)
	if err != nil {
		return false, fmt.Errorf("loadgen: message: %w", unwrapURL(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return false, fmt.Errorf("loadgen: message: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			ErrorMessage string `json:"error_message"`
		}
		_ = json.Unmarshal(raw, &e)
		return false, fmt.Errorf("loadgen: message: status %d %s", resp.StatusCode, e.ErrorMessage)
	}
	if t.cfg.Scenario != ScenarioBot {
		return false, nil
	}
	var cr struct {
		Messages []struct {
			Text string `json:"text"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(raw, &cr); err != nil {
		return false, fmt.Errorf("loadgen: bot answer: %w", err)
	}
	return len(cr.Messages) > 0 && cr.Messages[0].Text != "", nil
}

func outboxItem(body []byte) ivr.OutboxItem { return ivr.OutboxItem{Body: body} }
