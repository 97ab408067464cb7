package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// minimalOffer is an SDP offer with one PCMU audio section: enough for the
// softphone to take a call slot.
const minimalOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"

// TestServeDrainsLikeLoadBalancersExpect runs `koel serve` as a process
// and sends SIGTERM while a request waits for a slow bot. During the drain
// delay /readyz answers 503 while other requests are still served and new
// softphone calls are refused; a second SIGTERM ends the delay, the
// listener closes, the in-flight request completes and the process exits
// cleanly (issue 9 defect 5). Every step waits on a condition, never on
// a sleep: the delay is long (60 s) and cut short by the second signal.
func TestServeDrainsLikeLoadBalancersExpect(t *testing.T) {
	botReached := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	slowBot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(botReached) })
		<-release
		fmt.Fprint(w, `[{"recipient_id":"u","text":"slow but sure"}]`)
	}))
	defer slowBot.Close()
	var releaseOnce sync.Once
	releaseBot := func() { releaseOnce.Do(func() { close(release) }) }
	defer releaseBot()

	cmd := exec.Command(os.Args[0], "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--dev")
	cmd.Env = append(os.Environ(),
		"KOEL_TEST_RUN_MAIN=1",
		"KOEL_DEMO_TOKEN="+testToken,
		"KOEL_BOT_URL="+slowBot.URL,
		"KOEL_BOT_TIMEOUT=60s",
		"KOEL_STT_ENGINE=none",
		"KOEL_DRAIN_TIMEOUT=120s",
		"KOEL_DRAIN_DELAY=60s",
	)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	addrRE := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)
	lines := bufio.NewScanner(stdout)
	var addr string
	for addr == "" && lines.Scan() {
		if m := addrRE.FindStringSubmatch(lines.Text()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatalf("koel serve did not report its address; stderr:\n%s", stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	base := "http://" + addr
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) (int, error) {
		resp, err := client.Get(base + path)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	offer := func() (int, string) {
		body := fmt.Sprintf(`{"sdp":%q,"type":"offer","connection":"demo"}`, minimalOffer)
		resp, err := client.Post(base+"/sim/offer", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	// poll waits for cond on a real process, failing after a generous
	// deadline; the interval only paces the polling.
	poll := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not reached; stderr:\n%s", what, stderr.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if code, err := get("/readyz"); err != nil || code != http.StatusOK {
		t.Fatalf("readyz before SIGTERM: %d %v", code, err)
	}

	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, base+"/api/bots/1/converse", strings.NewReader(`{"user_id":"u","text":"hello"}`))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{status: resp.StatusCode, body: string(b)}
	}()
	select {
	case <-botReached:
	case <-time.After(20 * time.Second):
		t.Fatal("the request never reached the bot")
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	poll("readyz answers 503", func() bool { code, err := get("/readyz"); return err == nil && code == http.StatusServiceUnavailable })
	// Still serving during the delay: new connections, other endpoints.
	if code, err := get("/healthz"); err != nil || code != http.StatusOK {
		t.Fatalf("healthz during the drain delay: %d %v", code, err)
	}
	if code, body := offer(); code != http.StatusServiceUnavailable {
		t.Fatalf("softphone offer during the drain: %d %s, want 503", code, body)
	}
	select {
	case r := <-done:
		t.Fatalf("the in-flight request ended during the delay: %+v", r)
	default:
	}

	// A second SIGTERM ends the delay: the listener closes.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	poll("the listener closes", func() bool { _, err := get("/healthz"); return err != nil })
	releaseBot()
	r := <-done
	if r.err != nil || r.status != http.StatusOK || !strings.Contains(r.body, "slow but sure") {
		t.Fatalf("in-flight request: status %d body %q err %v", r.status, r.body, r.err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("koel serve exited with %v; stderr:\n%s", err, stderr.String())
	}
	for _, want := range []string{"readyz answers 503", "drain delay skipped", "msg=stopped"} {
		if !strings.Contains(stderr.String(), want) {
			t.Fatalf("stderr does not log %q:\n%s", want, stderr.String())
		}
	}
}

// TestDrainDelayConfig: koel serve waits 5 s by default, within a shorter
// drain timeout; 0 turns the wait off; a delay past the timeout is refused.
func TestDrainDelayConfig(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		want    time.Duration
		wantErr string
	}{
		{map[string]string{}, 5 * time.Second, ""},
		{map[string]string{"KOEL_DRAIN_TIMEOUT": "4s"}, 2 * time.Second, ""},
		{map[string]string{"KOEL_DRAIN_DELAY": "0s"}, 0, ""},
		{map[string]string{"KOEL_DRAIN_DELAY": "12s"}, 12 * time.Second, ""},
		{map[string]string{"KOEL_DRAIN_DELAY": "1m"}, 0, "shorter than drain_timeout"},
		{map[string]string{"KOEL_DRAIN_DELAY": "-2s"}, 0, "negative"},
	} {
		c, err := parseServeConfig(nil, env(tc.env))
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: err = %v, want %q", tc.env, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%v: %v", tc.env, err)
		case c.DrainDelay != tc.want:
			t.Errorf("%v: drain delay %v, want %v", tc.env, c.DrainDelay, tc.want)
		}
	}
}
