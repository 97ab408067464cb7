package sim

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/audio/tts"
)

// maxWAVBytes caps a --wav file.
const maxWAVBytes = 50 << 20

// step is one thing the CLI caller does when the emulator listens.
type step struct {
	kind string // "say", "wav", "dtmf" (or "none" in tests: do nothing)
	arg  string
}

// stepFlag appends ordered steps of one kind to a shared list.
type stepFlag struct {
	kind  string
	steps *[]step
}

func (f stepFlag) String() string { return "" }
func (f stepFlag) Set(v string) error {
	if f.kind == "dtmf" && (v == "" || !validDigits(v) || len(v) > 32) {
		return fmt.Errorf("%q is not up to 32 DTMF keys (0-9 * # A-D)", v)
	}
	if strings.TrimSpace(v) == "" {
		return errors.New("empty value")
	}
	*f.steps = append(*f.steps, step{kind: f.kind, arg: v})
	return nil
}

// cliOptions are the parsed flags of `koel call`.
type cliOptions struct {
	server     string
	connection string
	app        string
	steps      []step
	out        string
	silence    float64
	maxRecord  float64
	voice      string
	timeout    time.Duration
	verbose    bool
	strict     bool
	token      string
	dial       string
	dialFor    time.Duration
	confFor    time.Duration
}

func parseCLI(args []string, stderr io.Writer) (cliOptions, error) {
	var o cliOptions
	fs := flag.NewFlagSet("koel call", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: koel call [--server URL] (--connection ID | --app URL) (--say TEXT | --wav FILE | --dtmf DIGITS)... [--out bot.wav]")
		fmt.Fprintln(stderr, "Each --say, --wav and --dtmf is one turn, in the order given: it is played when the emulator listens.")
		fmt.Fprintln(stderr, "With no turns the caller listens until the app ends the call or first waits for input.")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.server, "server", "http://127.0.0.1:8080", "koel server base URL")
	fs.StringVar(&o.connection, "connection", "", "koel KooKoo connection identifier (e.g. demo)")
	fs.StringVar(&o.app, "app", "", "URL of any KooKoo app")
	fs.Var(stepFlag{"say", &o.steps}, "say", "say TEXT with text-to-speech (repeatable)")
	fs.Var(stepFlag{"wav", &o.steps}, "wav", "play FILE (WAV or MP3) as the caller (repeatable)")
	fs.Var(stepFlag{"dtmf", &o.steps}, "dtmf", "press DIGITS (RFC 4733) (repeatable)")
	fs.StringVar(&o.out, "out", "", "write the bot's audio (what the caller heard) to this WAV file")
	fs.Float64Var(&o.silence, "silence", 0, "override every <record>'s silence, seconds")
	fs.Float64Var(&o.maxRecord, "max-record", 0, "override every <record>'s maxduration, seconds")
	fs.StringVar(&o.voice, "voice", "", "espeak-ng voice for --say")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up after this long")
	fs.BoolVar(&o.verbose, "v", false, "also print partial transcripts and debug logs")
	fs.BoolVar(&o.strict, "strict", false, "end the call on any response KooKoo would only read tolerantly, or that fails validation")
	fs.StringVar(&o.token, "token", os.Getenv("KOEL_SIM_TOKEN"), "sim token or link token (outside development mode; default $KOEL_SIM_TOKEN)")
	fs.StringVar(&o.dial, "dial", "", "simulated outcome of every <dial>: answered, not_answered or busy (default: the server's, not_answered)")
	fs.DurationVar(&o.dialFor, "dial-duration", 0, "how long an answered <dial> talks (callduration)")
	fs.DurationVar(&o.confFor, "conference-duration", 0, "leave a <conference> after this long (0: stay until a --dtmf step presses #)")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("%w: unexpected argument %q", ErrBadRequest, fs.Arg(0))
	case (o.connection == "") == (o.app == ""):
		return o, fmt.Errorf("%w: give exactly one of --connection or --app", ErrBadRequest)
	case o.timeout <= 0:
		return o, fmt.Errorf("%w: --timeout must be positive", ErrBadRequest)
	case o.dial != "" && o.dial != DialAnswered && o.dial != DialNotAnswered && o.dial != DialBusy:
		return o, fmt.Errorf("%w: --dial %q is not %s, %s or %s", ErrBadRequest, o.dial, DialAnswered, DialNotAnswered, DialBusy)
	case o.dialFor < 0 || o.dialFor > time.Hour || o.confFor < 0 || o.confFor > time.Hour:
		return o, fmt.Errorf("%w: --dial-duration and --conference-duration must be within 0..1h", ErrBadRequest)
	}
	return o, nil
}

// cliDeps are what RunCLI builds by default; tests inject their own.
type cliDeps struct {
	tts tts.Synthesizer
}

// RunCLI is `koel call`: it calls a koel server's softphone endpoint as a
// WebRTC caller, performs each --say (text-to-speech), --wav or --dtmf
// step in order whenever the emulator listens, prints one line per event
// to stdout, writes the bot's audio to --out, and returns an error (a
// non-zero exit) when the call fails: refused, media failure, an app
// error, or the call ending before every step was done.
func RunCLI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runCLI(ctx, args, stdout, stderr, cliDeps{})
}

func runCLI(ctx context.Context, args []string, stdout, stderr io.Writer, deps cliDeps) error {
	o, err := parseCLI(args, stderr)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelDebug
	}
	// pion may log from its goroutines while a connection winds down; the
	// guard stops that at return, so nothing writes to stderr afterwards.
	logOut := &guardedWriter{w: stderr}
	defer logOut.close()
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))
	var hasSay bool
	for _, s := range o.steps {
		hasSay = hasSay || s.kind == "say"
	}
	if deps.tts == nil && hasSay {
		if deps.tts, err = defaultSynthesizer(); err != nil {
			return fmt.Errorf("sim: text-to-speech for --say: %w", err)
		}
	}
	// Load every audio up front, so a bad file fails before dialling.
	clips := make([]audio.PCM, len(o.steps))
	for i, s := range o.steps {
		if s.kind != "wav" {
			continue
		}
		if clips[i], err = loadAudioFile(s.arg); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	sc := &script{steps: o.steps, clips: clips, tts: deps.tts, voice: voiceNamed(o.voice), out: stdout, verbose: o.verbose}
	// Synthesize every --say before dialling too, so the caller speaks as
	// soon as the emulator listens (a slow synthesis would otherwise eat
	// into the record's initial silence).
	if err := sc.prepare(ctx); err != nil {
		return err
	}
	api, err := newAPI(log)
	if err != nil {
		return err
	}
	c, err := dialSim(ctx, api, clientConfig{
		Server: o.server, Connection: o.connection, AppURL: o.app,
		SilencePeriod: o.silence, MaxRecordTime: o.maxRecord, Logger: log,
		Token: o.token, Strict: o.strict, DialOutcome: o.dial,
		DialDuration: o.dialFor.Seconds(), ConferenceDuration: o.confFor.Seconds(),
	})
	if err != nil {
		return err
	}
	runErr := sc.run(ctx, c)
	closeErr := c.hangup()
	if o.out != "" {
		if err := writeWAVFile(o.out, c.botAudio()); err != nil {
			return errors.Join(runErr, err)
		}
	}
	if runErr != nil {
		return runErr
	}
	if closeErr != nil {
		return fmt.Errorf("sim: hang up: %w", closeErr)
	}
	return nil
}

// guardedWriter serializes writes and drops them once closed.
type guardedWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (g *guardedWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return len(p), nil
	}
	return g.w.Write(p)
}

func (g *guardedWriter) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
}

// loadAudioFile reads a WAV or MP3 file as 8 kHz PCM.
func loadAudioFile(path string) (audio.PCM, error) {
	f, err := os.Open(path)
	if err != nil {
		return audio.PCM{}, fmt.Errorf("%w: %w", ErrAudio, err)
	}
	defer f.Close()
	p, err := audio.Decode(f, maxWAVBytes)
	if err != nil {
		return audio.PCM{}, fmt.Errorf("%w: %s: %w", ErrAudio, path, err)
	}
	if p.Rate != audio.SampleRate {
		if p, err = audio.Resample(p, audio.SampleRate); err != nil {
			return audio.PCM{}, fmt.Errorf("%w: %s: %w", ErrAudio, path, err)
		}
	}
	return p, nil
}

func writeWAVFile(path string, p audio.PCM) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("sim: --out: %w", err)
	}
	if err := audio.EncodeWAV(f, p, audio.EncodingPCM16); err != nil {
		f.Close()
		return fmt.Errorf("sim: --out: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sim: --out: %w", err)
	}
	return nil
}

// script drives a client through its steps.
type script struct {
	steps   []step
	clips   []audio.PCM
	tts     tts.Synthesizer
	voice   tts.Voice
	out     io.Writer
	verbose bool
	// hangupAfterLast returns as soon as the last step is sent (tests:
	// the caller hangs up mid-turn).
	hangupAfterLast bool
	// seen collects every event, for tests.
	seen []Event
}

// prepare synthesizes the audio of every "say" step that has none yet.
func (sc *script) prepare(ctx context.Context) error {
	if len(sc.clips) < len(sc.steps) {
		sc.clips = append(sc.clips, make([]audio.PCM, len(sc.steps)-len(sc.clips))...)
	}
	for i := range sc.steps {
		if err := sc.prepareStep(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// prepareStep synthesizes step i when it is a "say" without audio.
func (sc *script) prepareStep(ctx context.Context, i int) error {
	s := sc.steps[i]
	if s.kind != "say" || len(sc.clips[i].Samples) > 0 {
		return nil
	}
	p, err := sc.tts.Synthesize(ctx, s.arg, sc.voice)
	if err == nil && p.Rate != audio.SampleRate {
		p, err = audio.Resample(p, audio.SampleRate)
	}
	if err != nil {
		return fmt.Errorf("sim: say %q: %w", s.arg, err)
	}
	sc.clips[i] = p
	return nil
}

// run performs the steps and returns nil when all were done and the bot
// answered the last one (the emulator listens again, or the app hung up).
func (sc *script) run(ctx context.Context, c *client) error {
	next := 0
	var failures []string
	var id uint64
	for {
		select {
		case ev := <-c.events:
			sc.seen = append(sc.seen, ev)
			sc.print(ev)
			switch ev.Type {
			case EventError:
				failures = append(failures, ev.Text)
			case EventHangup:
				if ev.Reason == "error" {
					return fmt.Errorf("%w: %s", ErrCallFailed, ev.Text)
				}
				if len(failures) > 0 {
					return fmt.Errorf("%w: %s", ErrCallFailed, strings.Join(failures, "; "))
				}
				if next < len(sc.steps) {
					return fmt.Errorf("%w: the call ended after %d of %d steps", ErrCallFailed, next, len(sc.steps))
				}
				return nil
			case EventListen:
				if next == len(sc.steps) {
					if len(failures) > 0 {
						return fmt.Errorf("%w: %s", ErrCallFailed, strings.Join(failures, "; "))
					}
					return nil
				}
				id++
				if err := sc.perform(ctx, c, sc.steps[next], next, id); err != nil {
					return err
				}
				next++
				if next == len(sc.steps) && sc.hangupAfterLast {
					return nil
				}
			}
		case <-c.leg.ended:
			return fmt.Errorf("%w: media ended: %w", ErrCallFailed, c.leg.endCause())
		case <-ctx.Done():
			return fmt.Errorf("%w: timed out after %d of %d steps: %w", ErrCallFailed, next, len(sc.steps), ctx.Err())
		}
	}
}

// perform sends one step.
func (sc *script) perform(ctx context.Context, c *client, s step, i int, id uint64) error {
	switch s.kind {
	case "none": // tests: let the emulator time out
		return nil
	case "dtmf":
		fmt.Fprintf(sc.out, "caller: [keys %s]\n", s.arg)
		return c.send(ctx, &playItem{id: id, keys: s.arg})
	case "wav":
		fmt.Fprintf(sc.out, "caller: [%s, %.2fs]\n", s.arg, sc.clips[i].Duration().Seconds())
		return c.send(ctx, &playItem{id: id, pcm: sc.clips[i].Samples})
	default:
		if err := sc.prepareStep(ctx, i); err != nil {
			return err
		}
		fmt.Fprintf(sc.out, "caller: %s\n", s.arg)
		return c.send(ctx, &playItem{id: id, pcm: sc.clips[i].Samples})
	}
}

// print writes one line per event.
func (sc *script) print(ev Event) {
	w := sc.out
	switch ev.Type {
	case EventCall:
		fmt.Fprintf(w, "event: call sid=%s app=%s\n", ev.SID, ev.Text)
	case EventRequest:
		name := ev.KooKoo
		if name == "" {
			name = "(follow-up, no event)"
		}
		line := "event: " + name
		if ev.Data != "" {
			line += " data=" + ev.Data
		}
		if ev.Status != "" {
			line += " status=" + ev.Status
		}
		fmt.Fprintln(w, line)
	case EventBot:
		if ev.Text != "" {
			fmt.Fprintf(w, "bot: %s\n", ev.Text)
		} else {
			fmt.Fprintf(w, "bot: [audio %s]\n", ev.URL)
		}
	case EventListen:
		fmt.Fprintf(w, "event: listening (%s)\n", ev.Mode)
	case EventPartial:
		if sc.verbose {
			fmt.Fprintf(w, "event: partial %q\n", ev.Text)
		}
	case EventCaller:
		fmt.Fprintf(w, "event: heard %q confidence=%.2f\n", ev.Text, ev.Confidence)
	case EventTurn:
		reply := "none"
		if ev.ReplyMS >= 0 {
			reply = fmt.Sprintf("%dms", ev.ReplyMS)
		}
		fmt.Fprintf(w, "event: turn end=%s speech=%.2fs recorded=%.2fs reply=%s\n", ev.Reason,
			float64(ev.SpeechMS)/1000, float64(ev.RecordMS)/1000, reply)
	case EventDTMF:
		fmt.Fprintf(w, "event: keys %q\n", ev.Text)
	case EventDial:
		fmt.Fprintf(w, "event: dial %s (simulated %s)\n", ev.Text, ev.Status)
	case EventSMS:
		fmt.Fprintf(w, "event: sms %q\n", ev.Text)
	case EventWarning:
		fmt.Fprintf(w, "warning: %s\n", ev.Text)
	case EventConference:
		fmt.Fprintf(w, "event: conference %s (simulated; # leaves)\n", ev.Text)
	case EventStream: // stream.go
		fmt.Fprintf(w, "stream: %s %s\n", ev.Mode, ev.Text)
	case EventInfo:
		fmt.Fprintf(w, "event: %s\n", ev.Text)
	case EventError:
		fmt.Fprintf(w, "error: %s\n", ev.Text)
	case EventHangup:
		fmt.Fprintf(w, "event: hangup by %s%s (frames late %d of %d)\n", ev.Reason, prefixed(": ", ev.Text), ev.FramesLate, ev.FramesSent)
	}
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}
