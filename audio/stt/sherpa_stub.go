//go:build !cgo || !linux || !(amd64 || arm64 || arm) || nosherpa

package stt

import (
	"context"
	"fmt"
	"io"
)

// Sherpa is the sherpa-onnx backend. This build has no sherpa-onnx (built
// with the nosherpa tag, without cgo, or for a platform the module does
// not ship libraries for): NewSherpa always fails with ErrUnavailable.
type Sherpa struct{}

var _ Transcriber = (*Sherpa)(nil)

// NewSherpa checks cfg, then reports that sherpa-onnx is not compiled in.
func NewSherpa(cfg SherpaConfig) (*Sherpa, error) {
	if _, err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w: sherpa-onnx is not compiled into this build (built with the nosherpa tag, CGO_ENABLED=0 or for a platform other than linux amd64/arm64/arm); rebuild with cgo on linux", ErrUnavailable)
}

// RunSherpaProbe fails: there is nothing to probe in this build.
func RunSherpaProbe(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	_, err := NewSherpa(SherpaConfig{ModelDir: "-", DataDir: "-"})
	return err
}

// Recordings returns s.
func (s *Sherpa) Recordings() Transcriber { return s }

// SampleRate is 0: nothing is decoded.
func (s *Sherpa) SampleRate() int { return 0 }

// Start always fails with ErrUnavailable.
func (s *Sherpa) Start(ctx context.Context, v Vocabulary) (Stream, error) {
	return nil, ErrUnavailable
}

// Close does nothing.
func (s *Sherpa) Close() error { return nil }
