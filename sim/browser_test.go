package sim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/audiotest"
)

// cdp is a minimal Chrome DevTools Protocol client over
// --remote-debugging-pipe (fd 3 in, fd 4 out, messages end with NUL).
type cdp struct {
	w       io.Writer
	mu      sync.Mutex
	next    int
	pending map[int]chan cdpMessage
	done    chan struct{}
}

type cdpMessage struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
	Method string `json:"method"`
}

func newCDP(w io.Writer, r io.Reader) *cdp {
	c := &cdp{w: w, pending: map[int]chan cdpMessage{}, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		br := bufio.NewReader(r)
		for {
			b, err := br.ReadBytes(0)
			if err != nil {
				return
			}
			var m cdpMessage
			if json.Unmarshal(bytes.TrimSuffix(b, []byte{0}), &m) != nil || m.ID == 0 {
				continue // events are not needed
			}
			c.mu.Lock()
			ch := c.pending[m.ID]
			delete(c.pending, m.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		}
	}()
	return c
}

// call sends a command (to a page session when session is set) and waits
// for its result.
func (c *cdp) call(ctx context.Context, session, method string, params any, out any) error {
	c.mu.Lock()
	c.next++
	id := c.next
	ch := make(chan cdpMessage, 1)
	c.pending[id] = ch
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	b, _ := json.Marshal(msg)
	_, err := c.w.Write(append(b, 0))
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cdp %s: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return fmt.Errorf("cdp %s: %s", method, m.Error.Message)
		}
		if out != nil {
			return json.Unmarshal(m.Result, out)
		}
		return nil
	case <-c.done:
		return fmt.Errorf("cdp %s: browser closed", method)
	case <-ctx.Done():
		return fmt.Errorf("cdp %s: %w", method, ctx.Err())
	}
}

// eval evaluates a JavaScript expression (awaiting promises) in a page.
func (c *cdp) eval(ctx context.Context, session, expr string) (json.RawMessage, error) {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	err := c.call(ctx, session, "Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true}, &res)
	if err != nil {
		return nil, err
	}
	if e := res.ExceptionDetails; e != nil {
		return nil, errors.New(e.Text + " " + e.Exception.Description)
	}
	return res.Result.Value, nil
}

// lockedBuffer is a bytes.Buffer safe for exec's copying goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fakeMicWAV writes what Chromium plays as the microphone (it loops the
// file): a pause, the question, a long pause.
func fakeMicWAV(t *testing.T, question string) string {
	t.Helper()
	speech, err := testTTS(t).Synthesize(context.Background(), question, voiceNamed(""))
	if err != nil {
		t.Fatal(err)
	}
	p := audiotest.Concat(audiotest.Silence(7*time.Second), speech, audiotest.Silence(6*time.Second))
	p48, err := audio.Resample(p, 48000)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "mic.wav")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := audio.EncodeWAV(f, p48, audio.EncodingPCM16); err != nil {
		t.Fatal(err)
	}
	return path
}

// chromiumPage starts headless Chromium (fake microphone playing mic, if
// set) and attaches to a blank page; the session id and a stop function
// come back. The test skips without chromium.
func chromiumPage(t *testing.T, ctx context.Context, mic string) (*cdp, string, *lockedBuffer, func()) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (make test installs it); skipping the browser test")
	}
	toChrome, chromeIn, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	chromeOut, fromChrome, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(),
		"--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"}
	if mic != "" {
		args = append(args, "--use-file-for-fake-audio-capture="+mic)
	}
	args = append(args, "--autoplay-policy=no-user-gesture-required", "--remote-debugging-pipe", "about:blank")
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.ExtraFiles = []*os.File{toChrome, fromChrome} // fd 3: commands in, fd 4: replies out
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	toChrome.Close()
	fromChrome.Close()
	c := newCDP(chromeIn, chromeOut)
	stop := func() {
		_ = c.call(context.Background(), "", "Browser.close", map[string]any{}, nil)
		chromeIn.Close()
		_ = cmd.Wait()
		chromeOut.Close()
		<-c.done
	}
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := c.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		stop()
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	if err := c.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached); err != nil {
		stop()
		t.Fatal(err)
	}
	return c, attached.SessionID, stderr, stop
}

// pageReady resolves once the page's script has run (the keypad exists).
const pageReady = `new Promise((resolve, reject) => {
	  const ready = () => document.querySelectorAll('#keypad button').length === 12;
	  if (ready()) return resolve(true);
	  const o = new MutationObserver(() => { if (ready()) { o.disconnect(); resolve(true); } });
	  o.observe(document, {childList: true, subtree: true});
	  setTimeout(() => reject(new Error('page not ready: ' + location.href + ' ' + document.readyState)), 20000);
	})`

// TestBrowserAsksTheDemoBot opens /sim/ in headless Chromium with a fake
// microphone asking a demo question, clicks Call, and waits until the page
// shows the bot's answer. The screenshot is a test artifact.
func TestBrowserAsksTheDemoBot(t *testing.T) {
	if _, err := exec.LookPath("chromium"); err != nil {
		t.Skip("chromium is not installed (make test installs it); skipping the browser test")
	}
	ds := startDemo(t, true)
	mic := fakeMicWAV(t, "what are your opening hours")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, s, stderr, stop := chromiumPage(t, ctx, mic)
	defer stop()
	if err := c.call(ctx, s, "Emulation.setDeviceMetricsOverride", map[string]any{"width": 1100, "height": 1300, "deviceScaleFactor": 1, "mobile": false}, nil); err != nil {
		t.Fatal(err)
	}
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	if err := c.call(ctx, s, "Page.navigate", map[string]any{"url": ds.srv.URL + "/sim/"}, &nav); err != nil || nav.ErrorText != "" {
		t.Fatalf("navigate: %v %s", err, nav.ErrorText)
	}
	steps := []string{
		pageReady,
		`document.getElementById('connection').value = 'demo'; document.getElementById('call').click(); true`,
	}
	for _, js := range steps {
		if _, err := c.eval(ctx, s, js); err != nil {
			t.Fatalf("eval %q: %v", js, err)
		}
	}
	// Resolve when the transcript shows the bot's answer and the turns table
	// its figures (a MutationObserver,
	// not polling); the page's own failure lines reject at once.
	const answer = "Our stores are open from nine in the morning"
	wait := `new Promise((resolve, reject) => {
	  const list = document.getElementById('transcript');
	  const turns = document.getElementById('turns');
	  const check = () => {
	    const text = list.innerText;
	    if (text.includes(` + "`" + answer + "`" + `) && turns.rows.length > 0) resolve(text + '\nturn: ' + turns.rows[turns.rows.length-1].innerText);
	    else if (/call failed|error:/.test(text)) reject(new Error(text));
	  };
	  new MutationObserver(check).observe(document.body, {childList: true, subtree: true, characterData: true});
	  check();
	})`
	text, err := c.eval(ctx, s, wait)
	shot := filepath.Join(t.ArtifactDir(), "softphone.png")
	if dir := os.Getenv("KOEL_SCREENSHOT_DIR"); dir != "" {
		shot = filepath.Join(dir, "softphone.png")
	}
	var png struct {
		Data string `json:"data"`
	}
	if serr := c.call(context.Background(), s, "Page.captureScreenshot", map[string]any{"format": "png"}, &png); serr == nil {
		if b, derr := base64.StdEncoding.DecodeString(png.Data); derr == nil {
			if werr := os.WriteFile(shot, b, 0o644); werr == nil {
				t.Logf("screenshot: %s", shot)
			}
		}
	}
	if err != nil {
		page, _ := c.eval(context.Background(), s, `document.body.innerText`)
		t.Fatalf("the page did not show the answer: %v\npage:\n%s\nchromium: %s", err, page, stderr.String())
	}
	t.Logf("page transcript:\n%s", text)
	if _, err := c.eval(ctx, s, `document.getElementById('hangup').click(); true`); err != nil {
		t.Errorf("hang up: %v", err)
	}
}

// TestBrowserLinkOutcomeAndWarnings opens a signed softphone link on a
// server outside development mode, picks the busy dial outcome in the
// page's settings and calls an app whose <dial> has an unusable attribute:
// the page shows the warning (tag, attribute, value, default), the app
// gets status=busy, and the call ends as the app ends it.
func TestBrowserLinkOutcomeAndWarnings(t *testing.T) {
	if _, err := exec.LookPath("chromium"); err != nil {
		t.Skip("chromium is not installed (make test installs it); skipping the browser test")
	}
	needEspeak(t)
	log := newAppLog()
	app := http.NewServeMux()
	app.HandleFunc("/kookoo/shop", func(w http.ResponseWriter, r *http.Request) {
		q := log.add(r)
		switch q["event"] {
		case "NewCall":
			xmlResponse(w, `<response><playtext>Connecting you.</playtext><dial record="maybe" timeout="30">09876543210</dial></response>`)
		case "Dial":
			xmlResponse(w, `<response><playtext>The line is `+q["status"]+`.</playtext><hangup/></response>`)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	ts := startSim(t, func(c *Config) { c.Open, c.Token, c.App = false, "page-token", app })
	link, _, _ := ts.sim.SignLink("shop", time.Minute, time.Now())

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, s, stderr, stop := chromiumPage(t, ctx, "")
	defer stop()
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	page := ts.srv.URL + "/sim/?" + url.Values{"connection": {"shop"}, "t": {link}}.Encode()
	if err := c.call(ctx, s, "Page.navigate", map[string]any{"url": page}, &nav); err != nil || nav.ErrorText != "" {
		t.Fatalf("navigate: %v %s", err, nav.ErrorText)
	}
	for _, js := range []string{pageReady,
		`document.getElementById('dial').value = 'busy'; document.getElementById('call').click(); true`} {
		if _, err := c.eval(ctx, s, js); err != nil {
			t.Fatalf("eval %q: %v", js, err)
		}
	}
	wait := `new Promise((resolve, reject) => {
	  const list = document.getElementById('transcript');
	  const check = () => {
	    const text = list.innerText;
	    if (text.includes('The line is busy.') && /ended/.test(document.getElementById('status').innerText)) resolve(text);
	    else if (/call failed|error:/.test(text)) reject(new Error(text));
	  };
	  new MutationObserver(check).observe(document.body, {childList: true, subtree: true, characterData: true});
	  check();
	})`
	text, err := c.eval(ctx, s, wait)
	if err != nil {
		body, _ := c.eval(context.Background(), s, `document.body.innerText`)
		t.Fatalf("the page did not show the call: %v\npage:\n%s\nchromium: %s", err, body, stderr.String())
	}
	var shown string
	if err := json.Unmarshal(text, &shown); err != nil {
		t.Fatalf("transcript %s: %v", text, err)
	}
	t.Logf("page transcript:\n%s", shown)
	for _, want := range []string{
		`Warning<dial> record="maybe" is not a boolean; KooKoo's default false is used`,
		"dial *******3210 (simulated: busy)",
	} {
		if !strings.Contains(shown, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if got := log.waitEvents(t, 3); !slices.Equal(got, []string{"NewCall", "Dial", "Disconnect"}) {
		t.Errorf("app saw %v", got)
	}
	if st := log.all()[1]["status"]; st != DialBusy {
		t.Errorf("Dial status %q, want busy (the page's setting)", st)
	}
}
