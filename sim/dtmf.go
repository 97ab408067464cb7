package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// telephoneEvent is one RFC 4733 §2.3 named-event payload.
type telephoneEvent struct {
	Event    uint8 // 0-9 digits, 10 '*', 11 '#', 12-15 'A'-'D'
	End      bool
	Volume   uint8  // 0-63, -dBm0
	Duration uint16 // in timestamp units (samples at 8 kHz)
}

// errTelephoneEvent marks a payload that is not a DTMF telephone-event.
var errTelephoneEvent = errors.New("sim: bad telephone-event payload")

const dtmfKeys = "0123456789*#ABCD"

// parseTelephoneEvent decodes an RFC 4733 payload. Only the DTMF events
// 0-15 are accepted; the payload may carry trailing bytes (several events
// are not used by DTMF senders and are rejected).
func parseTelephoneEvent(b []byte) (telephoneEvent, error) {
	if len(b) != 4 {
		return telephoneEvent{}, fmt.Errorf("%w: %d bytes, want 4", errTelephoneEvent, len(b))
	}
	if b[0] > 15 {
		return telephoneEvent{}, fmt.Errorf("%w: event %d is not a DTMF digit", errTelephoneEvent, b[0])
	}
	return telephoneEvent{
		Event:    b[0],
		End:      b[1]&0x80 != 0,
		Volume:   b[1] & 0x3f,
		Duration: binary.BigEndian.Uint16(b[2:4]),
	}, nil
}

// marshal encodes e into an RFC 4733 payload.
func (e telephoneEvent) marshal() []byte {
	b := make([]byte, 4)
	b[0] = e.Event
	b[1] = e.Volume & 0x3f
	if e.End {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:4], e.Duration)
	return b
}

// key returns the DTMF key of the event.
func (e telephoneEvent) key() rune { return rune(dtmfKeys[e.Event&0x0f]) }

// dtmfEvent returns the event code of a key, or false for other runes.
func dtmfEvent(key rune) (uint8, bool) {
	switch {
	case key >= '0' && key <= '9':
		return uint8(key - '0'), true
	case key == '*':
		return 10, true
	case key == '#':
		return 11, true
	case key >= 'A' && key <= 'D':
		return uint8(12 + key - 'A'), true
	case key >= 'a' && key <= 'd':
		return uint8(12 + key - 'a'), true
	}
	return 0, false
}

// dtmfDetector turns a stream of telephone-event packets into key presses:
// a key is reported once, on the first packet of an event (a new RTP
// timestamp), so the start and the three end retransmissions of RFC 4733
// §2.5.1.4 count as one press.
type dtmfDetector struct {
	have bool
	ts   uint32
}

// packet feeds one RTP packet's timestamp and payload and returns the key
// if this packet starts a new event.
func (d *dtmfDetector) packet(timestamp uint32, payload []byte) (rune, bool, error) {
	ev, err := parseTelephoneEvent(payload)
	if err != nil {
		return 0, false, err
	}
	if d.have && d.ts == timestamp {
		return 0, false, nil
	}
	d.have, d.ts = true, timestamp
	return ev.key(), true, nil
}

// validDigits reports whether s holds only DTMF keys.
func validDigits(s string) bool {
	for _, r := range s {
		if _, ok := dtmfEvent(r); !ok {
			return false
		}
	}
	return true
}
