package loadgen

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxResponseBytes caps an application's answer.
const maxResponseBytes = 1 << 20

// wordsPerSecond is how fast a prompt is assumed to be spoken when pacing
// (espeak-ng's default 175 words a minute, rounded down).
const wordsPerSecond = 2.7

// kookoo plays KooKoo's part: one session is one call.
type kookoo struct {
	cfg    Config
	appURL string
	recURL string
	srv    *http.Server
	run    string

	mu    sync.Mutex
	files map[string][]byte
	seq   atomic.Int64
}

var runSeq atomic.Int64

func newKooKoo(cfg Config) (*kookoo, error) {
	if len(cfg.Utterances) == 0 {
		return nil, errors.New("loadgen: the kookoo scenario needs recordings (RenderUtterances)")
	}
	k := &kookoo{cfg: cfg, files: make(map[string][]byte),
		run: strconv.FormatInt(time.Now().UnixNano()%1e9, 36) + strconv.FormatInt(runSeq.Add(1), 36)}
	k.appURL = cfg.AppURL
	if k.appURL == "" {
		k.appURL = strings.TrimSuffix(cfg.Target, "/") + "/kookoo/" + url.PathEscape(cfg.Identifier)
	}
	ln, err := net.Listen("tcp", cfg.RecordListen)
	if err != nil {
		return nil, fmt.Errorf("loadgen: recording host: %w", err)
	}
	k.recURL = cfg.RecordURL
	if k.recURL == "" {
		k.recURL = "http://" + ln.Addr().String()
	}
	k.srv = &http.Server{Handler: http.HandlerFunc(k.serveRecording), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = k.srv.Serve(ln) }()
	return k, nil
}

func (k *kookoo) close() { _ = k.srv.Close() }

func (k *kookoo) serveRecording(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	b, ok := k.files[r.URL.Path]
	k.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "audio/wav")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// reply is what the application answered to one event.
type reply struct {
	texts  []string
	record bool
	menu   bool // collectdtmf
	dial   bool
	hangup bool
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// promptTime is how long KooKoo would take to speak the reply's prompts.
func promptTime(r reply) time.Duration {
	words := 0
	for _, t := range r.texts {
		words += len(strings.Fields(t))
	}
	return time.Duration(float64(words) / wordsPerSecond * float64(time.Second))
}

func (k *kookoo) session(ctx context.Context, n int, rec *recorder) error {
	sid := fmt.Sprintf("load%s%07d", k.run, k.seq.Add(1))
	caller := fmt.Sprintf("98%08d", n%100_000_000)
	r, err := k.event(ctx, rec, "newcall", url.Values{"event": {"NewCall"}, "sid": {sid}, "cid": {caller},
		"called_number": {"918065740671"}, "cid_type": {"MOBILE"}, "operator": {"Airtel"}, "circle": {"KARNATAKA"}})
	if err != nil {
		return err
	}
	turn, detours := 0, 0
	for turn < k.cfg.Turns && !r.hangup && !time.Now().After(k.cfg.stopAt) {
		switch {
		case r.record:
		case (r.menu || r.dial) && detours < k.cfg.Turns:
			// The caller presses nothing at a menu, and an agent does not
			// answer a transfer: both lead back to the bot.
			detours++
			if r, err = k.detour(ctx, rec, sid, r); err != nil {
				return err
			}
			continue
		default:
			return fmt.Errorf("loadgen: the app answered with no record, menu, transfer or hangup: %q", strings.Join(r.texts, " "))
		}
		u := k.cfg.Utterances[(n*k.cfg.Turns+turn)%len(k.cfg.Utterances)]
		turn++
		if k.cfg.Pace {
			// The prompt plays, the caller thinks, speaks, and the silence
			// period passes before KooKoo posts the recording.
			if err := sleep(ctx, promptTime(r)+k.cfg.ThinkTime+u.Speech+k.cfg.SilencePeriod); err != nil {
				return err
			}
			if time.Now().After(k.cfg.stopAt) {
				break // the run is over: the caller hangs up
			}
		}
		path := fmt.Sprintf("/rec/%s-%d.wav", sid, turn)
		k.mu.Lock()
		k.files[path] = u.WAV
		k.mu.Unlock()
		r, err = k.event(ctx, rec, "record", url.Values{"event": {"Record"}, "sid": {sid}, "data": {k.recURL + path},
			"status": {"silence"}, "record_duration": {strconv.Itoa(int(u.Speech.Seconds()) + 1)}})
		k.mu.Lock()
		delete(k.files, path)
		k.mu.Unlock()
		if err != nil {
			return err
		}
		rec.turn(len(r.texts) > 0)
	}
	if r.hangup {
		return nil
	}
	_, err = k.event(ctx, rec, "hangup", url.Values{"event": {"Hangup"}, "sid": {sid}, "cid": {caller},
		"process": {"record"}, "total_call_duration": {"30"}})
	return err
}

// detour answers a menu with no key (KooKoo's GotDTMF with empty data
// after the timeout) and a transfer with an agent who does not answer.
func (k *kookoo) detour(ctx context.Context, rec *recorder, sid string, r reply) (reply, error) {
	if k.cfg.Pace {
		if err := sleep(ctx, promptTime(r)+k.cfg.ThinkTime); err != nil {
			return reply{}, err
		}
	}
	if r.menu {
		return k.event(ctx, rec, "gotdtmf", url.Values{"event": {"GotDTMF"}, "sid": {sid}, "data": {""}})
	}
	return k.event(ctx, rec, "dial", url.Values{"event": {"Dial"}, "sid": {sid}, "status": {"not_answered"}, "data": {"-1"}})
}

// event sends one KooKoo event as KooKoo does (GET with query
// parameters) and parses the answer.
func (k *kookoo) event(ctx context.Context, rec *recorder, kind string, v url.Values) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	sep := "?"
	if strings.Contains(k.appURL, "?") {
		sep = "&"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.appURL+sep+v.Encode(), nil)
	if err != nil {
		return reply{}, fmt.Errorf("loadgen: %s: %w", kind, err)
	}
	start := time.Now()
	resp, err := k.cfg.Client.Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("loadgen: %s: %w", kind, unwrapURL(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	took := time.Since(start)
	if err != nil {
		return reply{}, fmt.Errorf("loadgen: %s: %w", kind, err)
	}
	if resp.StatusCode != http.StatusOK {
		return reply{}, fmt.Errorf("loadgen: %s: status %d", kind, resp.StatusCode)
	}
	if kind == "hangup" {
		// KooKoo ignores the answer to a Hangup; apps send anything.
		rec.observe(kind, took)
		return reply{hangup: true}, nil
	}
	r, err := parseReply(body)
	if err != nil {
		return reply{}, fmt.Errorf("loadgen: %s: %w", kind, err)
	}
	rec.observe(kind, took)
	return r, nil
}

// unwrapURL drops the request URL from a transport error (it repeats the
// whole query).
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// parseReply reads a KooKoo response document.
func parseReply(body []byte) (reply, error) {
	var r reply
	d := xml.NewDecoder(bytes.NewReader(body))
	var in string
	sawResponse := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			if !sawResponse {
				return reply{}, fmt.Errorf("answer is not a KooKoo <response>: %.80q", body)
			}
			return r, nil
		}
		if err != nil {
			return reply{}, fmt.Errorf("answer is not XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			in = strings.ToLower(t.Name.Local)
			switch in {
			case "response":
				sawResponse = true
			case "record":
				r.record = true
			case "collectdtmf":
				r.menu = true
			case "dial":
				r.dial = true
			case "hangup":
				r.hangup = true
			}
		case xml.CharData:
			if in == "playtext" {
				if s := strings.TrimSpace(string(t)); s != "" {
					r.texts = append(r.texts, s)
				}
			}
		case xml.EndElement:
			in = ""
		}
	}
}
