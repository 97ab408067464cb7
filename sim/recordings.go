package sim

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"github.com/koelvoice/koel/audio/stt"
)

// recording is one finished <record>: its WAV bytes and, on the fast path,
// the transcript streamed while it was recorded.
type recording struct {
	id         string
	wav        []byte
	transcript stt.Result
	hasText    bool
	// speech is the end-pointer's span of the caller's speech; sttTime
	// the recogniser's time on the transcript.
	speech, sttTime time.Duration
	created         time.Time
}

// recordings keeps recent recordings in memory under a byte cap and a TTL.
type recordings struct {
	mu       sync.Mutex
	byID     map[string]*recording
	order    []*recording // oldest first
	bytes    int64
	maxBytes int64
	ttl      time.Duration
	now      func() time.Time
}

func newRecordings(maxBytes int64, ttl time.Duration) *recordings {
	return &recordings{byID: map[string]*recording{}, maxBytes: maxBytes, ttl: ttl, now: time.Now}
}

// newRecordingID names a recording after the <record> body, sanitized, with
// a random suffix so names repeated across calls never collide or guess.
func newRecordingID(name string) string {
	var b strings.Builder
	for _, r := range name {
		if b.Len() >= 48 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		b.WriteString("rec")
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	return b.String() + "-" + hex.EncodeToString(rnd[:])
}

// put stores a recording, evicting expired and then oldest ones.
func (rs *recordings) put(r *recording) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r.created = rs.now()
	rs.byID[r.id] = r
	rs.order = append(rs.order, r)
	rs.bytes += int64(len(r.wav))
	rs.evictLocked()
}

func (rs *recordings) evictLocked() {
	cutoff := rs.now().Add(-rs.ttl)
	i := 0
	for ; i < len(rs.order); i++ {
		r := rs.order[i]
		if rs.bytes <= rs.maxBytes && r.created.After(cutoff) {
			break
		}
		delete(rs.byID, r.id)
		rs.bytes -= int64(len(r.wav))
	}
	rs.order = append(rs.order[:0], rs.order[i:]...)
}

// get returns a live recording.
func (rs *recordings) get(id string) (*recording, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.evictLocked()
	r, ok := rs.byID[id]
	return r, ok
}
