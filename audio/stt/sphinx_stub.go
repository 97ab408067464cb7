//go:build !cgo || nopocketsphinx

package stt

import (
	"context"
	"fmt"
	"time"
)

// Sphinx is the pocketsphinx backend. This build has no pocketsphinx
// (built with the nopocketsphinx tag or without cgo): NewSphinx always
// fails with ErrUnavailable.
type Sphinx struct{}

var _ Transcriber = (*Sphinx)(nil)

// NewSphinx reports that pocketsphinx is not compiled in.
func NewSphinx(cfg SphinxConfig) (*Sphinx, error) {
	return nil, fmt.Errorf("%w: pocketsphinx is not compiled into this build (built with the nopocketsphinx tag or CGO_ENABLED=0); use the HTTP transcriber or rebuild with cgo and libpocketsphinx-dev", ErrUnavailable)
}

// Start always fails with ErrUnavailable.
func (s *Sphinx) Start(ctx context.Context, v Vocabulary) (Stream, error) {
	return nil, ErrUnavailable
}

// Close does nothing.
func (s *Sphinx) Close() error { return nil }

// CPU is always 0: nothing is recognised.
func (s *Sphinx) CPU() time.Duration { return 0 }
