package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "koel.yaml")
	if err := os.WriteFile(file, []byte("addr: ':7000'\ndata_dir: /from/yaml\nlog_level: warn\nbot:\n  timeout: 5s\ndemo:\n  token: yaml-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c Config)
	}{
		{"defaults", nil, nil, func(t *testing.T, c Config) {
			if c.Addr != ":8080" || c.DataDir != "./data" || c.DatabaseURL != "" || c.Bot.Kind != "faq" || c.Bot.Timeout != 3*time.Second || c.STT.Engine != "sphinx" || c.DrainTimeout != 30*time.Second {
				t.Fatalf("defaults = %+v", c)
			}
		}},
		{"yaml over defaults", []string{"--config", file}, nil, func(t *testing.T, c Config) {
			if c.Addr != ":7000" || c.DataDir != "/from/yaml" || c.LogLevel != "warn" || c.Bot.Timeout != 5*time.Second || c.Demo.Token != "yaml-token" {
				t.Fatalf("yaml = %+v", c)
			}
		}},
		{"env over yaml", []string{"--config", file}, map[string]string{"KOEL_ADDR": ":7100", "KOEL_DEMO_TOKEN": "env-token", "KOEL_DEV": "1", "KOEL_DEMO": "0"}, func(t *testing.T, c Config) {
			if c.Addr != ":7100" || c.Demo.Token != "env-token" || !c.Dev || !c.Demo.Disabled || c.DataDir != "/from/yaml" {
				t.Fatalf("env = %+v", c)
			}
		}},
		{"flags over env", []string{"--config", file, "--addr", ":7200", "--data-dir", "/flag"}, map[string]string{"KOEL_ADDR": ":7100"}, func(t *testing.T, c Config) {
			if c.Addr != ":7200" || c.DataDir != "/flag" {
				t.Fatalf("flags = %+v", c)
			}
		}},
		{"remote bot from env", nil, map[string]string{"KOEL_BOT_URL": "http://127.0.0.1:5005/webhooks/rest/webhook"}, func(t *testing.T, c Config) {
			if c.Bot.Kind != "remote" || c.Bot.RemoteURL == "" {
				t.Fatalf("bot = %+v", c.Bot)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseServeConfig(tt.args, env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "unknown.yaml")
	if err := os.WriteFile(unknown, []byte("adr: ':1'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clash := filepath.Join(dir, "clash.yaml")
	if err := os.WriteFile(clash, []byte("businesses:\n  - id: 1\n    name: Mine\n    token: t\n    client_id: c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badBiz := filepath.Join(dir, "badbiz.yaml")
	if err := os.WriteFile(badBiz, []byte("businesses:\n  - id: 5\n    name: X\n    client_id: c\n    connections:\n      - channel: fax\n        identifier: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"business id of the demo", []string{"--config", clash}, nil, "business id 1 is the demo business"},
		{"invalid business", []string{"--config", badBiz}, nil, `unknown channel "fax"`},
		{"unknown yaml key", []string{"--config", unknown}, nil, "field adr not found"},
		{"missing file", []string{"--config", filepath.Join(dir, "nope.yaml")}, nil, "no such file"},
		{"bad bool", nil, map[string]string{"KOEL_DEV": "maybe"}, `KOEL_DEV="maybe": want a boolean`},
		{"bad duration", nil, map[string]string{"KOEL_BOT_TIMEOUT": "soon"}, "want a duration"},
		{"bad database url", nil, map[string]string{"KOEL_DATABASE_URL": "mysql://x"}, "database_url must be a postgres:// URL"},
		{"bad stt engine", nil, map[string]string{"KOEL_STT_ENGINE": "vosk"}, `stt.engine "vosk"`},
		{"http stt without url", nil, map[string]string{"KOEL_STT_ENGINE": "http"}, "stt.engine http needs stt.url"},
		{"bad log level", []string{"--log-level", "loud"}, nil, `log_level "loud"`},
		{"bad public url", nil, map[string]string{"KOEL_PUBLIC_URL": "koel.example"}, "must be an absolute http(s) URL"},
		{"unknown flag", []string{"--nope"}, nil, "flag provided but not defined"},
		{"stray argument", []string{"extra"}, nil, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseServeConfig(tt.args, env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestRedactURLHidesPassword(t *testing.T) {
	for _, raw := range []string{
		"postgres://koel:s3cret@db:5432/koel",
		"postgres://koel@db:5432/koel?sslmode=disable&password=s3cret",
		"https://hooks.example.com/in?api_key=s3cret#s3cret",
	} {
		got := redactURL(raw)
		if strings.Contains(got, "s3cret") || !strings.Contains(got, "db:5432/koel") && !strings.Contains(got, "hooks.example.com/in") {
			t.Fatalf("redactURL(%q) = %s", raw, got)
		}
	}
}
