package sim

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzTelephoneEvent: any payload either fails or round-trips exactly.
func FuzzTelephoneEvent(f *testing.F) {
	for _, seed := range [][]byte{{5, 10, 0, 160}, {11, 0x87, 3, 32}, {16, 0, 0, 0}, {}, {1, 2, 3}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := parseTelephoneEvent(b)
		if err != nil {
			return
		}
		if !strings.ContainsRune(dtmfKeys, ev.key()) {
			t.Fatalf("key %q outside %q", ev.key(), dtmfKeys)
		}
		// Bit 6 of the second byte is reserved (R) and not kept.
		want := append([]byte(nil), b...)
		want[1] &^= 0x40
		if got := ev.marshal(); !bytes.Equal(got, want) {
			t.Fatalf("round trip %x -> %+v -> %x", b, ev, got)
		}
		var d dtmfDetector
		if k, ok, err := d.packet(1, b); err != nil || !ok || k != ev.key() {
			t.Fatalf("detector: %q %v %v", k, ok, err)
		}
	})
}

// FuzzSayAs: say-as never panics, stays bounded, and yields valid text.
func FuzzSayAs(f *testing.F) {
	for _, s := range []struct{ v, f string }{{"1234", "1"}, {"123ABC", "501"}, {"20110721", "201"}, {"53.5", "402"}, {"-9223372036854775808", "1"}, {"999999999999999999", "1"}, {"20241399", "202"}} {
		f.Add(s.v, s.f)
	}
	f.Fuzz(func(t *testing.T, value, format string) {
		got := sayAsText(value, format)
		if len(got) > 40*maxSayAsBytes {
			t.Fatalf("%d bytes of speech for %d bytes of input", len(got), len(value))
		}
		if utf8.ValidString(value) && !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8 out of valid input: %q", got)
		}
	})
}

// FuzzParseControl: control messages are accepted only when well formed.
func FuzzParseControl(f *testing.F) {
	for _, s := range []string{`{"type":"hangup"}`, `{"type":"dtmf","digits":"12#"}`, `{"type":"dtmf","digits":"x"}`, `{`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseControl(b)
		if err != nil {
			return
		}
		switch m.Type {
		case "hangup":
		case "dtmf":
			if m.Digits == "" || !validDigits(m.Digits) || len(m.Digits) > 32 {
				t.Fatalf("accepted bad digits %q", m.Digits)
			}
		default:
			t.Fatalf("accepted type %q", m.Type)
		}
	})
}

// FuzzCheckOffer: the SDP check never panics and accepts only offers
// whose audio section carries PCMU.
func FuzzCheckOffer(f *testing.F) {
	f.Add("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0 101\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:0 PCMU/8000\r\n")
	f.Add("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n")
	f.Add("v=0\r\nm=audio 0 RTP/AVP 0\r\n")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, raw string) {
		if err := checkOffer(raw); err == nil && !strings.Contains(raw, "audio") {
			t.Fatalf("accepted an offer without audio: %q", raw)
		}
	})
}

// FuzzOfferRequest: any JSON body is validated without panicking, and an
// accepted request has a target and sane settings.
func FuzzOfferRequest(f *testing.F) {
	f.Add(`{"sdp":"v=0","connection":"demo"}`)
	f.Add(`{"sdp":"v=0","app_url":"http://127.0.0.1:9/app?x=1","silence_period":1.5,"max_record_time":10,"caller":"+919876543210"}`)
	f.Add(`{"connection":"../x","app_url":"file:///etc/passwd","silence_period":-1}`)
	f.Add(`{"silence_period":1e400}`)
	s := &Sim{cfg: Config{PublicBaseURL: "http://127.0.0.1:8080", AllowURL: allowHTTP}}
	f.Fuzz(func(t *testing.T, body string) {
		var req offerRequest
		if json.Unmarshal([]byte(body), &req) != nil {
			return
		}
		o, err := s.parseOfferRequest(req)
		if err != nil {
			return
		}
		if o.target.u == nil || o.silence < 0 || o.maxRecord < 0 || o.cid == "" || len(o.cid) > 16 {
			t.Fatalf("accepted %+v from %q", o, body)
		}
		if o.connection != "" && !connectionPattern.MatchString(o.connection) {
			t.Fatalf("accepted connection %q", o.connection)
		}
	})
}

// FuzzSplitSpeech: chunks cover the text's words in order, none empty.
func FuzzSplitSpeech(f *testing.F) {
	for _, s := range []string{"Hello. How are you?", "Our stores are open from nine in the morning to nine in the evening, Monday to Saturday.", "a.b.c", "...", "x, y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		text = strings.TrimSpace(text)
		if text == "" {
			return
		}
		chunks := splitSpeech(text)
		for _, c := range chunks {
			if strings.TrimSpace(c) == "" {
				t.Fatalf("empty chunk in %q", chunks)
			}
		}
		if got, want := strings.Join(strings.Fields(strings.Join(chunks, " ")), " "), strings.Join(strings.Fields(text), " "); got != want {
			t.Fatalf("chunks %q lose text: %q vs %q", chunks, got, want)
		}
	})
}
