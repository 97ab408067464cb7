package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestPprofBehindAdminToken takes runtime profiles from a real koel serve
// the way `go tool pprof -H "Authorization: Bearer …"` does: refused
// without the admin token (and when no token is configured), a gzipped
// heap profile and a goroutine dump with it, a JSON 404 for a profile that
// does not exist.
func TestPprofBehindAdminToken(t *testing.T) {
	get := func(t *testing.T, base, token, path string) (int, http.Header, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, body
	}

	t.Run("no token configured", func(t *testing.T) {
		srv := startServer(t, testConfig(t, t.TempDir(), "", ""))
		if code, _, _ := get(t, srv.URL(), "anything", "/admin/v1/debug/pprof/heap"); code != http.StatusForbidden {
			t.Fatalf("status %d, want 403 while the admin API is disabled", code)
		}
	})

	cfg := testConfig(t, t.TempDir(), "", "")
	cfg.AdminToken = "the-admin-token"
	srv := startServer(t, cfg)
	base := srv.URL()
	for _, tok := range []string{"", "wrong", "the-admin-tokenx"} {
		if code, _, body := get(t, base, tok, "/admin/v1/debug/pprof/heap"); code != http.StatusUnauthorized || bytes.Contains(body, []byte("heap")) {
			t.Errorf("token %q: %d (%d bytes), want 401", tok, code, len(body))
		}
	}

	code, _, body := get(t, base, "the-admin-token", "/admin/v1/debug/pprof/heap")
	if code != http.StatusOK {
		t.Fatalf("heap: %d %s", code, body)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("heap profile is not gzip (a pprof protobuf): %v", err)
	}
	if raw, err := io.ReadAll(zr); err != nil || len(raw) == 0 {
		t.Fatalf("heap profile: %d bytes, %v", len(raw), err)
	}

	code, _, body = get(t, base, "the-admin-token", "/admin/v1/debug/pprof/goroutine?debug=1")
	if code != http.StatusOK || !strings.Contains(string(body), "goroutine profile: total") {
		t.Fatalf("goroutine dump: %d %.200s", code, body)
	}

	code, _, body = get(t, base, "the-admin-token", "/admin/v1/debug/pprof/")
	if code != http.StatusOK || !strings.Contains(string(body), "heap") {
		t.Fatalf("index: %d %.200s", code, body)
	}

	code, hdr, body := get(t, base, "the-admin-token", "/admin/v1/debug/pprof/no_such_profile")
	var e struct {
		ErrorMessage string `json:"error_message"`
	}
	if code != http.StatusNotFound || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") || json.Unmarshal(body, &e) != nil || e.ErrorMessage == "" {
		t.Fatalf("unknown profile: %d %s %s, want a JSON 404", code, hdr.Get("Content-Type"), body)
	}
}
