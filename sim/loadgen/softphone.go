package loadgen

import (
	"context"
	"errors"
	"time"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/sim"
)

// softphone places softphone calls: one session is one call.
type softphone struct {
	cfg        Config
	lateBefore float64
	lateOK     bool
	// clock sends every caller's frames.
	clock *sim.FrameClock
}

func newSoftphone(cfg Config) (*softphone, error) {
	if len(cfg.Utterances) == 0 {
		return nil, errors.New("loadgen: the softphone scenario needs recordings (RenderUtterances)")
	}
	s := &softphone{cfg: cfg, clock: sim.NewFrameClock(0)}
	s.lateBefore, s.lateOK = metricValue(context.Background(), cfg, "koel_sim_frames_late_total")
	return s, nil
}

func (s *softphone) close() {}

func (s *softphone) session(ctx context.Context, n int, rec *recorder) error {
	clips := make([]audio.PCM, 0, s.cfg.Turns)
	for turn := range s.cfg.Turns {
		clips = append(clips, s.cfg.Utterances[(n*s.cfg.Turns+turn)%len(s.cfg.Utterances)].PCM)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(s.cfg.Turns+1)*s.cfg.Timeout)
	defer cancel()
	start := time.Now()
	res, err := sim.SoftphoneCall(ctx, sim.SoftphoneConfig{Server: s.cfg.Target, Connection: s.cfg.Identifier, Token: s.cfg.Token,
		Clips: clips, ThinkTime: s.cfg.ThinkTime, Clock: s.clock})
	for _, ms := range res.ReplyMS {
		// The emulator reports -1 for a turn that got no audio reply.
		rec.turn(ms >= 0)
		if ms >= 0 {
			rec.observe("reply", time.Duration(ms)*time.Millisecond)
		}
	}
	rec.observe("call", time.Since(start))
	return err
}

// finish adds the frames the server sent late during the run.
func (s *softphone) finish(ctx context.Context, rep *Report) {
	after, ok := metricValue(ctx, s.cfg, "koel_sim_frames_late_total")
	if !ok || !s.lateOK {
		rep.LateFrames = -1
		return
	}
	rep.LateFrames = int(after - s.lateBefore)
}
