package audio

import (
	"fmt"
	"math"
)

// VADConfig tunes the energy voice-activity detector. Levels are in dB; a
// frame's level is 10·log10(mean(x²)/32768²), so a full-scale square wave is
// 0 dBFS and digital silence is clamped to [MinLevelDBFS]. Zero fields take
// the documented defaults.
type VADConfig struct {
	// EnterDB is how far above the noise floor a frame must be to start
	// speech (default 12 dB).
	EnterDB float64
	// ExitDB is how far above the noise floor a frame must stay, once speech
	// has started, to count as voiced (default 6 dB). It must not exceed
	// EnterDB.
	ExitDB float64
	// MinSpeechDBFS is an absolute floor: a quieter frame is never voiced,
	// whatever the noise floor (default -45 dBFS). It keeps breaths and line
	// hiss out of speech on a digitally silent line.
	MinSpeechDBFS float64
	// EnterFrames is how many consecutive frames above the enter threshold
	// start speech (default 3, i.e. 60 ms); shorter bursts such as clicks
	// are not speech.
	EnterFrames int
	// HangoverFrames is how many unvoiced frames speech survives before the
	// detector returns to silence (default 15, i.e. 300 ms). Within the
	// hangover a frame above the exit threshold is voiced again at once.
	HangoverFrames int
	// FloorRiseDBPerSecond is how fast the noise floor follows a louder
	// background while the detector hears silence (default 10 dB/s); during
	// speech it rises ten times slower. It falls at once to any quieter
	// frame.
	FloorRiseDBPerSecond float64
}

// MinLevelDBFS is the level given to digital silence and the lowest the noise
// floor goes.
const MinLevelDBFS = -90.0

// VAD defaults.
const (
	DefaultEnterDB              = 12.0
	DefaultExitDB               = 6.0
	DefaultMinSpeechDBFS        = -45.0
	DefaultEnterFrames          = 3
	DefaultHangoverFrames       = 15
	DefaultFloorRiseDBPerSecond = 10.0
)

func (c VADConfig) withDefaults() (VADConfig, error) {
	if c.EnterDB == 0 {
		c.EnterDB = DefaultEnterDB
	}
	if c.ExitDB == 0 {
		c.ExitDB = DefaultExitDB
	}
	if c.MinSpeechDBFS == 0 {
		c.MinSpeechDBFS = DefaultMinSpeechDBFS
	}
	if c.EnterFrames == 0 {
		c.EnterFrames = DefaultEnterFrames
	}
	if c.HangoverFrames == 0 {
		c.HangoverFrames = DefaultHangoverFrames
	}
	if c.FloorRiseDBPerSecond == 0 {
		c.FloorRiseDBPerSecond = DefaultFloorRiseDBPerSecond
	}
	switch {
	case !finite(c.EnterDB, c.ExitDB, c.MinSpeechDBFS, c.FloorRiseDBPerSecond):
		return c, fmt.Errorf("%w: vad: non-finite setting", ErrInvalid)
	case c.EnterDB < 0 || c.ExitDB < 0:
		return c, fmt.Errorf("%w: vad: negative threshold", ErrInvalid)
	case c.ExitDB > c.EnterDB:
		return c, fmt.Errorf("%w: vad: exit threshold %.1f dB above enter threshold %.1f dB", ErrInvalid, c.ExitDB, c.EnterDB)
	case c.MinSpeechDBFS > 0 || c.MinSpeechDBFS < MinLevelDBFS:
		return c, fmt.Errorf("%w: vad: minimum speech level %.1f dBFS outside [%v, 0]", ErrInvalid, c.MinSpeechDBFS, MinLevelDBFS)
	case c.EnterFrames < 1 || c.EnterFrames > 50:
		return c, fmt.Errorf("%w: vad: enter frames %d outside [1, 50]", ErrInvalid, c.EnterFrames)
	case c.HangoverFrames < 1 || c.HangoverFrames > 500:
		return c, fmt.Errorf("%w: vad: hangover frames %d outside [1, 500]", ErrInvalid, c.HangoverFrames)
	case c.FloorRiseDBPerSecond < 0:
		return c, fmt.Errorf("%w: vad: negative floor rise", ErrInvalid)
	}
	return c, nil
}

func finite(vs ...float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// VAD is an energy voice-activity detector over 20 ms frames with an
// adaptive noise floor, enter/exit hysteresis and a hangover. It is
// deterministic: it keeps no clock, only the frames it has seen.
//
// # Decision
//
// For each frame the VAD computes its level L and compares it with the
// noise floor F (initialised from the first frame):
//
//   - In silence, a frame is loud when L ≥ max(F+EnterDB, MinSpeechDBFS).
//     EnterFrames consecutive loud frames start speech, and all of them are
//     voiced (the start is dated back to the first).
//   - In speech, a frame is voiced when L ≥ max(F+ExitDB, MinSpeechDBFS).
//     After HangoverFrames consecutive unvoiced frames the VAD returns to
//     silence.
//
// F drops at once to any quieter frame and otherwise rises by
// FloorRiseDBPerSecond (a tenth of it during speech).
//
// A VAD is not safe for concurrent use.
type VAD struct {
	cfg      VADConfig
	riseQ    float64 // floor rise per frame in silence
	riseS    float64 // floor rise per frame in speech
	floor    float64
	started  bool
	speaking bool
	loud     int // consecutive loud frames while in silence
	quiet    int // consecutive unvoiced frames while in speech
	level    float64
}

// NewVAD returns a VAD; zero fields of cfg take their defaults. Invalid
// settings give an error wrapping [ErrInvalid].
func NewVAD(cfg VADConfig) (*VAD, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	perFrame := c.FloorRiseDBPerSecond * FrameDuration.Seconds()
	return &VAD{cfg: c, riseQ: perFrame, riseS: perFrame / 10}, nil
}

// VADDecision is the outcome of one frame.
type VADDecision struct {
	// Voiced reports whether this frame is speech.
	Voiced bool
	// Started is the number of frames, this one included, that became
	// voiced when speech started on this frame (EnterFrames); 0 otherwise.
	Started int
}

// Frame classifies one frame (normally [FrameSamples] samples; an empty
// frame counts as silence).
func (v *VAD) Frame(frame []int16) VADDecision {
	l := LevelDBFS(frame)
	v.level = l
	if !v.started {
		v.started = true
		v.floor = l
	}
	enter := max(v.floor+v.cfg.EnterDB, v.cfg.MinSpeechDBFS)
	exit := max(v.floor+v.cfg.ExitDB, v.cfg.MinSpeechDBFS)
	var d VADDecision
	if v.speaking {
		if l >= exit {
			v.quiet = 0
			d.Voiced = true
		} else {
			v.quiet++
			if v.quiet >= v.cfg.HangoverFrames {
				v.speaking, v.quiet = false, 0
			}
		}
	} else {
		if l >= enter {
			v.loud++
			if v.loud >= v.cfg.EnterFrames {
				v.speaking = true
				d = VADDecision{Voiced: true, Started: v.loud}
				v.loud, v.quiet = 0, 0
			}
		} else {
			v.loud = 0
		}
	}
	switch {
	case l < v.floor:
		v.floor = l
	case v.speaking:
		v.floor = min(v.floor+v.riseS, l)
	default:
		v.floor = min(v.floor+v.riseQ, l)
	}
	return d
}

// Speaking reports whether the VAD is in speech (including the hangover).
func (v *VAD) Speaking() bool { return v.speaking }

// Pending reports whether the VAD, in silence, has seen loud frames that may
// yet start speech.
func (v *VAD) Pending() bool { return !v.speaking && v.loud > 0 }

// NoiseFloorDBFS returns the current noise floor estimate.
func (v *VAD) NoiseFloorDBFS() float64 { return v.floor }

// LastLevelDBFS returns the level of the last frame.
func (v *VAD) LastLevelDBFS() float64 { return v.level }

// LevelDBFS returns the RMS level of samples in dBFS (0 dBFS is an RMS of
// 32768), never below [MinLevelDBFS]. Empty input is MinLevelDBFS.
func LevelDBFS(samples []int16) float64 {
	if len(samples) == 0 {
		return MinLevelDBFS
	}
	var sum int64
	for _, s := range samples {
		x := int64(s)
		sum += x * x
	}
	if sum == 0 {
		return MinLevelDBFS
	}
	l := 10 * math.Log10(float64(sum)/float64(len(samples))/(32768*32768))
	return max(l, MinLevelDBFS)
}
