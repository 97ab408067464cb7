package stt

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/koelvoice/koel/audio"
)

// fakeWhisper is an OpenAI /v1/audio/transcriptions server: it checks the
// request and answers answer with status.
func fakeWhisper(t *testing.T, status int, answer string) (*httptest.Server, *http.Request, *audio.PCM) {
	t.Helper()
	var got http.Request
	var pcm audio.PCM
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/audio/transcriptions" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") != "Bearer sekret" {
			http.Error(w, `{"error":"bad key"}`, http.StatusUnauthorized)
			return
		}
		if err := r.ParseMultipartForm(10 << 20); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f, _, err := r.FormFile("file")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		pcm, err = audio.DecodeWAV(f, 10<<20)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got = *r
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, &got, &pcm
}

func TestHTTPTranscribe(t *testing.T) {
	answer := `{"text":" Where is my ORDER?","segments":[{"avg_logprob":-0.1,"no_speech_prob":0.02}]}`
	srv, req, pcm := fakeWhisper(t, http.StatusOK, answer)
	h, err := NewHTTP(HTTPConfig{BaseURL: srv.URL + "/", APIKey: "sekret", Language: "en"})
	if err != nil {
		t.Fatal(err)
	}
	in := make([]int16, 8000)
	for i := range in {
		in[i] = int16(i % 300)
	}
	r, err := Transcribe(t.Context(), h, Vocabulary{Key: "k", Phrases: []string{"where is my order", "track my order"}}, in)
	if err != nil {
		t.Fatal(err)
	}
	if r.Text != "where is my order" || r.Words != 4 || r.Confidence < 0.85 || r.Confidence > 0.9 {
		t.Fatalf("got %+v", r)
	}
	if pcm.Rate != audio.SampleRate || len(pcm.Samples) != len(in) {
		t.Fatalf("server got %d Hz, %d samples", pcm.Rate, len(pcm.Samples))
	}
	for k, want := range map[string]string{"model": "whisper-1", "language": "en", "prompt": "where is my order, track my order"} {
		if got := req.FormValue(k); got != want {
			t.Errorf("form %s = %q, want %q", k, got, want)
		}
	}
}

func TestHTTPErrors(t *testing.T) {
	tests := []struct {
		name, key, answer string
		status            int
		want              error
	}{
		{"server error", "sekret", "overloaded", http.StatusServiceUnavailable, ErrRemote},
		{"bad key", "wrong-key", "", http.StatusOK, ErrRemote},
		{"not json", "sekret", "<html>", http.StatusOK, ErrRemote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _, _ := fakeWhisper(t, tt.status, tt.answer)
			h, _ := NewHTTP(HTTPConfig{BaseURL: srv.URL, APIKey: tt.key})
			_, err := Transcribe(t.Context(), h, Vocabulary{Key: "k"}, make([]int16, 160))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), tt.key) {
				t.Fatalf("error leaks the key: %v", err)
			}
		})
	}
	t.Run("empty audio", func(t *testing.T) {
		h, _ := NewHTTP(HTTPConfig{BaseURL: "http://127.0.0.1:1"})
		st, _ := h.Start(t.Context(), Vocabulary{Key: "k"})
		if _, err := st.Close(t.Context()); !errors.Is(err, ErrEmptyAudio) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		h, _ := NewHTTP(HTTPConfig{BaseURL: srv.URL})
		if _, err := Transcribe(t.Context(), h, Vocabulary{Key: "k"}, make([]int16, 160)); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	})
	t.Run("bad url", func(t *testing.T) {
		if _, err := NewHTTP(HTTPConfig{BaseURL: "not a url"}); err == nil {
			t.Fatal("want error")
		}
	})
}

func FuzzParseTranscription(f *testing.F) {
	for _, s := range []string{`{"text":"hello"}`, `{"text":""}`, `{"text":"a","segments":[{"avg_logprob":-1e308,"no_speech_prob":2}]}`, `[]`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseTranscription(data)
		if err != nil {
			return
		}
		if r.Confidence < 0 || r.Confidence > 1 || r.Confidence != r.Confidence {
			t.Fatalf("confidence %v", r.Confidence)
		}
		if (r.Text == "") != (r.Words == 0) || len(strings.Fields(r.Text)) != r.Words {
			t.Fatalf("text %q words %d", r.Text, r.Words)
		}
	})
}
