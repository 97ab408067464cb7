package main

import (
	"context"
	"log/slog"
)

// voiceStack is the voice side of koel: speech engines, the KooKoo app and
// the softphone.
type voiceStack struct{}

func newVoiceStack(ctx context.Context, s *Server) (*voiceStack, error) { return &voiceStack{}, nil }

func (v *voiceStack) drain(ctx context.Context, log *slog.Logger) {}
func (v *voiceStack) close() error                                { return nil }
func (v *voiceStack) readiness() map[string]string                { return nil }
