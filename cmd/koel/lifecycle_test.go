package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
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

// TestMain lets a test re-run this binary as `koel` itself: with
// KOEL_TEST_RUN_MAIN=1 the process runs main's run() on its arguments.
func TestMain(m *testing.M) {
	if os.Getenv("KOEL_TEST_RUN_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
	}
	os.Exit(m.Run())
}

// TestServeDrainsOnSIGTERM starts `koel serve` as a process, sends SIGTERM
// while a request is waiting for a slow bot, and checks the request still
// completes and the process exits cleanly.
func TestServeDrainsOnSIGTERM(t *testing.T) {
	botReached := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	slowBot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(botReached) })
		<-release
		fmt.Fprint(w, `[{"recipient_id":"u","text":"slow but sure"}]`)
	}))
	defer slowBot.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()

	cmd := exec.Command(os.Args[0], "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	cmd.Env = append(os.Environ(),
		"KOEL_TEST_RUN_MAIN=1",
		"KOEL_DEMO_TOKEN="+testToken,
		"KOEL_BOT_URL="+slowBot.URL,
		"KOEL_BOT_TIMEOUT=30s",
		"KOEL_STT_ENGINE=none",
		"KOEL_SIM=0",
		"KOEL_DRAIN_TIMEOUT=20s",
		"KOEL_DRAIN_DELAY=0s",
	)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()

	// The process prints where it listens.
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

	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/bots/1/converse", strings.NewReader(`{"user_id":"u","text":"hello"}`))
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
	// New connections are refused once draining starts.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := (&http.Client{Timeout: time.Second}).Get("http://" + addr + "/healthz")
		if err != nil {
			break
		}
		c.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("server kept accepting requests after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond) // polling a real process's listener
	}
	close(release)
	r := <-done
	if r.err != nil || r.status != http.StatusOK || !strings.Contains(r.body, "slow but sure") {
		t.Fatalf("in-flight request: status %d body %q err %v", r.status, r.body, r.err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("koel serve exited with %v; stderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "msg=stopped") {
		t.Fatalf("no clean stop logged:\n%s", stderr.String())
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogsNeverCarrySecrets runs requests that carry every kind of secret
// and a caller number through a server logging at debug level, and checks
// none of them reaches the log.
func TestLogsNeverCarrySecrets(t *testing.T) {
	var logs syncBuffer
	rc, hook := newReceiver(t, 1)
	cfg := testConfig(t, t.TempDir(), "", hook.URL)
	cfg.DatabaseURL = ""
	srv, err := NewServer(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())

	const wrongToken = "wrong-token-should-not-be-logged"
	const caller = "09876512345"
	postJSON(t, srv.URL()+"/api/bots/1/converse", map[string]string{"Authorization": "Bearer " + testToken}, `{"user_id":"u","text":"hello"}`)
	postJSON(t, srv.URL()+"/api/bots/1/converse", map[string]string{"Authorization": "Bearer " + wrongToken}, `{"user_id":"u","text":"hello"}`)
	postJSON(t, srv.URL()+"/v1.0/log_message_from_user/", webhookHeaders, logMessage("alice", "hello"))
	waitFor(t, rc.attempted, "the failed first delivery") // logged as a warning
	waitFor(t, rc.got, "the delivery")
	resp, err := http.Get(srv.URL() + "/kookoo/demo?event=NewCall&sid=555&cid=" + caller)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	out := logs.String()
	if !strings.Contains(out, "sid=555") {
		t.Fatalf("the KooKoo call was not logged at all:\n%s", out)
	}
	for name, secret := range map[string]string{"API token": testToken, "wrong token": wrongToken, "webhook secret": testSecret, "caller number": caller} {
		if strings.Contains(out, secret) {
			t.Errorf("the log carries the %s", name)
		}
	}
}
