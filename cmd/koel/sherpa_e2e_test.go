package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koelvoice/koel/audio/stt"
	"github.com/koelvoice/koel/sim"
)

// tinySherpaModels writes the tiny random-weight sherpa models of
// audio/stt's tests ("online" a streaming transducer, "offline" a
// TDNN-CTC, "online,runtime-mismatch" one onnxruntime aborts on) and
// returns their directories. They decode garbage: these tests check
// wiring, not accuracy.
func tinySherpaModels(t *testing.T, specs ...string) []string {
	t.Helper()
	py := "/usr/bin/python3" // Debian's, with python3-onnx
	if _, err := os.Stat(py); err != nil {
		py = "python3"
	}
	root := t.TempDir()
	args := []string{filepath.Join("..", "..", "audio", "stt", "testdata", "sherpa_tiny_model.py")}
	dirs := make([]string, len(specs))
	for i, s := range specs {
		dirs[i] = filepath.Join(root, strings.ReplaceAll(s, ",", "-"))
		args = append(args, s+"="+dirs[i])
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), py, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("write tiny sherpa models (needs python3-onnx, python3-numpy; make test installs them): %v: %s", err, stderr.String())
	}
	return dirs
}

func readyz(t *testing.T, base string) (int, map[string]string) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("/readyz body: %v", err)
	}
	return resp.StatusCode, body
}

func TestSherpaConfigNeedsModelDir(t *testing.T) {
	_, err := parseServeConfig(nil, env(map[string]string{"KOEL_STT_ENGINE": "sherpa"}))
	if err == nil || !strings.Contains(err.Error(), "stt.engine sherpa needs stt.sherpa.model_dir") {
		t.Fatalf("err = %v", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "koel.yaml")
	yaml := "stt:\n  engine: sherpa\n  pool_size: 3\n  sherpa:\n    model_dir: /models/zipformer\n    offline_model_dir: /models/offline\n    sample_rate: 8000\n    num_threads: 2\n    hotwords_score: 2.5\n    max_vocabularies: 3\n"
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := parseServeConfig([]string{"--config", path}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := SherpaSTTConfig{ModelDir: "/models/zipformer", OfflineModelDir: "/models/offline", SampleRate: 8000, NumThreads: 2, HotwordsScore: 2.5, MaxVocabularies: 3}
	if c.STT.Engine != "sherpa" || c.STT.Sherpa != want || c.STT.PoolSize != 3 {
		t.Fatalf("stt = %+v", c.STT)
	}
	c, err = parseServeConfig([]string{"--config", path}, env(map[string]string{"KOEL_STT_SHERPA_MODEL_DIR": "/env/model"}))
	if err != nil || c.STT.Sherpa.ModelDir != "/env/model" {
		t.Fatalf("environment override: %+v, %v", c.STT.Sherpa, err)
	}
}

// TestSherpaEngineBadModel: a configured sherpa engine whose model is
// missing, or one onnxruntime aborts on while decoding (caught by the probe
// process), keeps the server up (text channels work) but not ready, with
// the reason in /readyz.
func TestSherpaEngineBadModel(t *testing.T) {
	t.Setenv("KOEL_TEST_RUN_MAIN", "1") // the probe re-runs this binary as koel
	bad := tinySherpaModels(t, "online,runtime-mismatch")[0]
	for _, tt := range []struct {
		name, dir string
		want      []string
	}{
		{"missing", filepath.Join(t.TempDir(), "no-such-model"), []string{"no-such-model", "no such file"}},
		{"aborts onnxruntime", bad, []string{"probe process", "what():"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir(), "", "")
			cfg.STT.Engine = "sherpa"
			cfg.STT.Sherpa.ModelDir = tt.dir
			srv := startServer(t, cfg)
			code, body := readyz(t, srv.URL())
			if code != http.StatusServiceUnavailable || body["status"] != "stt unavailable" {
				t.Fatalf("/readyz = %d %v, want 503 stt unavailable", code, body)
			}
			if strings.Contains(body["stt"], "not compiled") {
				t.Skipf("sherpa-onnx not in this build: %s", body["stt"])
			}
			for _, w := range tt.want {
				if !strings.Contains(body["stt"], w) {
					t.Fatalf("/readyz stt = %q: want it to say %q", body["stt"], w)
				}
			}
			resp, err := http.Get(srv.URL() + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("/healthz = %d", resp.StatusCode)
			}
		})
	}
}

// TestSherpaEngineServesCalls runs koel serve with stt.engine sherpa on the
// tiny models: ready, KooKoo recordings decoded by the offline model, and a
// softphone call whose speech goes through the streaming model. The
// transcripts are garbage, so the bot re-prompts; what is asserted is that
// both paths run end to end without errors.
func TestSherpaEngineServesCalls(t *testing.T) {
	// koel serve checks the models in a child process, this test binary
	// re-run as koel (see TestMain).
	t.Setenv("KOEL_TEST_RUN_MAIN", "1")
	d := tinySherpaModels(t, "online", "offline")
	online, offline := d[0], d[1]
	cfg := testConfig(t, t.TempDir(), "", "")
	cfg.STT.Engine = "sherpa"
	cfg.STT.Sherpa.ModelDir = online
	cfg.STT.Sherpa.OfflineModelDir = offline
	cfg.Sim.Disabled = false
	srv := startServer(t, cfg)
	if strings.Contains(srv.voice.sttState, "not compiled") {
		t.Skipf("sherpa-onnx not in this build: %s", srv.voice.sttState)
	}
	if code, body := readyz(t, srv.URL()); code != http.StatusOK || body["stt"] != "ok" {
		t.Fatalf("/readyz = %d %v", code, body)
	}
	if _, ok := srv.voice.stt.(*stt.Sherpa); !ok {
		t.Fatalf("softphone transcriber is %T, want the streaming *stt.Sherpa", srv.voice.stt)
	}
	if srv.voice.recordings == srv.voice.stt {
		t.Fatal("KooKoo recordings must use the offline model when one is configured")
	}

	recs := newRecordings(t)
	const sid = "8101"
	steps := []struct {
		name   string
		params map[string]string
	}{
		{"new call", map[string]string{"event": "NewCall", "cid": "09876543210", "called_number": "918065740671"}},
		{"question", map[string]string{"event": "Record", "data": recs.say(t, "q1", "when are you open on sunday"), "status": "silence"}},
		{"hang up", map[string]string{"event": "Hangup", "process": "record", "total_call_duration": "12"}},
	}
	for _, st := range steps {
		params := ev(sid, st.params["event"])
		for k, v := range st.params {
			params.Set(k, v)
		}
		code, body := kookooGet(t, srv.URL(), params)
		if code != http.StatusOK || (st.name != "hang up" && !strings.Contains(body, `<response sid="8101">`)) {
			t.Fatalf("%s: %d %s", st.name, code, body)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := sim.RunCLI(ctx, []string{"--server", srv.URL(), "--connection", "demo", "--say", "do you deliver to chennai", "--timeout", "60s"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("koel call: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "heard") {
		t.Fatalf("the softphone call transcribed nothing through sherpa:\n%s", stdout.String())
	}
}
