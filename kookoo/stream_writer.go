package kookoo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// streamWriter owns the writing side of one stream's socket: reply audio
// goes out in 10 ms packets paced by its own timer, each with a seqid that
// encodes the packet's number; commands go out at once. The session talks
// to it only through non-blocking sends on a bounded channel, so a slow
// reader at the far end stalls the writer (and then breaks the stream after
// the write timeout), never the session.
type streamWriter struct {
	ws        *websocket.Conn
	ucid      string
	prefix    string // seqid prefix, random per stream
	timeout   time.Duration
	maxQueued int // samples

	cmds   chan writerCmd
	kick   chan struct{} // progress: a packet was sent, or the writer failed
	done   chan struct{}
	failed atomic.Bool

	// sent is the number of the last packet written (-1: none yet).
	sent atomic.Int64
	out  atomic.Int64 // packets written
	late atomic.Int64 // packets written more than lateAfter after their slot
	drop atomic.Int64 // segments refused because the queue was full

	onPacket func(late bool)
}

type writerCmdKind int

const (
	cmdAudio writerCmdKind = iota
	cmdClear
	cmdCommand
)

type writerCmd struct {
	kind    writerCmdKind
	pcm     []int16
	first   int64 // number of the segment's first packet
	command string
}

// lateAfter is how far behind its slot a packet may leave before it counts
// as late (and the pacing re-anchors instead of bursting).
const lateAfter = 30 * time.Millisecond

// writerQueue bounds the commands waiting for the writer.
const writerQueue = 64

func newStreamWriter(ws *websocket.Conn, ucid string, timeout, maxQueued time.Duration, onPacket func(late bool)) *streamWriter {
	var b [10]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	w := &streamWriter{
		ws: ws, ucid: ucid, timeout: timeout,
		prefix:    h[0:8] + "-" + h[8:12] + "-4" + h[12:15] + "-8" + h[15:18] + "-",
		maxQueued: int(maxQueued / (time.Second / StreamRate)),
		cmds:      make(chan writerCmd, writerQueue),
		kick:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		onPacket:  onPacket,
	}
	w.sent.Store(-1)
	return w
}

// seqID names packet n.
func (w *streamWriter) seqID(n int64) string {
	s := strconv.FormatInt(n, 16)
	return w.prefix + strings.Repeat("0", max(0, 12-len(s))) + s
}

// packetOf returns the number of the packet a mark acknowledges; false for
// a seqid this writer never sent.
func (w *streamWriter) packetOf(seqid string) (int64, bool) {
	rest, ok := strings.CutPrefix(seqid, w.prefix)
	if !ok || len(rest) != 12 {
		return 0, false
	}
	n, err := strconv.ParseInt(rest, 16, 64)
	if err != nil || n > w.sent.Load() {
		return 0, false
	}
	return n, true
}

// send queues a command without blocking; false when the writer is stuck
// or gone (the stream is then broken).
func (w *streamWriter) send(c writerCmd) bool {
	if w.failed.Load() {
		return false
	}
	select {
	case w.cmds <- c:
		return true
	default:
		return false
	}
}

func (w *streamWriter) notify() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// run writes until ctx ends or a write fails.
func (w *streamWriter) run(ctx context.Context) {
	defer close(w.done)
	defer w.notify()
	type segment struct {
		pcm   []int16
		first int64
		off   int // samples sent
	}
	var (
		queue  []segment
		queued int
		anchor time.Time // slot of packet k is anchor + k*10ms
		k      int64
		buf    = make([]byte, 0, 1024)
		frame  [StreamFrameSamples]int16
	)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	write := func(msg []byte) bool {
		wctx, cancel := context.WithTimeout(ctx, w.timeout)
		err := w.ws.Write(wctx, websocket.MessageText, msg)
		cancel()
		if err != nil {
			w.failed.Store(true)
			return false
		}
		return true
	}
	sendPacket := func() bool {
		seg := &queue[0]
		n := copy(frame[:], seg.pcm[seg.off:])
		clear(frame[n:])
		num := seg.first + int64(seg.off/StreamFrameSamples)
		buf = AppendMediaMessage(buf[:0], w.ucid, frame[:], StreamRate, w.seqID(num))
		// Published before the write: its mark can only follow it.
		w.sent.Store(num)
		if !write(buf) {
			return false
		}
		seg.off += StreamFrameSamples
		queued -= n
		if seg.off >= len(seg.pcm) {
			queue[0] = segment{}
			queue = queue[1:]
		}
		w.out.Add(1)
		return true
	}
	schedule := func() {
		if len(queue) == 0 {
			return
		}
		timer.Reset(max(0, time.Until(anchor.Add(time.Duration(k)*StreamFrameDuration))))
	}
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-w.cmds:
			switch c.kind {
			case cmdAudio:
				if len(c.pcm) == 0 {
					continue
				}
				if queued+len(c.pcm) > w.maxQueued {
					w.drop.Add(1)
					continue
				}
				idle := len(queue) == 0
				queue = append(queue, segment{pcm: c.pcm, first: c.first})
				queued += len(c.pcm)
				if idle {
					anchor, k = time.Now(), 0
					schedule()
				}
			case cmdClear:
				for i := range queue {
					queue[i] = segment{}
				}
				queue, queued = queue[:0], 0
				timer.Stop()
				if !write([]byte(`{"command":"` + CommandClearBuffer + `"}`)) {
					return
				}
			case cmdCommand:
				if !write([]byte(`{"command":"` + c.command + `"}`)) {
					return
				}
			}
		case <-timer.C:
			if len(queue) == 0 {
				continue
			}
			slot := anchor.Add(time.Duration(k) * StreamFrameDuration)
			late := time.Since(slot) > lateAfter
			if late {
				w.late.Add(1)
				anchor, k = time.Now(), 0
			}
			if !sendPacket() {
				return
			}
			if w.onPacket != nil {
				w.onPacket(late)
			}
			w.notify()
			k++
			schedule()
		}
	}
}
