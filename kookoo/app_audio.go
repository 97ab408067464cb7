package kookoo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/ivr"
)

// Recordings as streams: a WAV recording is decoded while it downloads and
// handed to the voice service in small blocks, so a large recording costs
// kilobytes, not its size three times over. MP3 (KooKoo's format="mp3") is
// decoded whole, within the fetcher's size cap.

// OpenAudio implements [ivr.AudioSource] with the app's SSRF-safe fetcher.
func (a *App) OpenAudio(ctx context.Context, recordingURL string) (ivr.PCMReader, error) {
	f, ok := a.fetcher.(*Fetcher)
	if !ok {
		// Another fetcher: download whole, then decode.
		rec, err := a.fetcher.Fetch(ctx, recordingURL)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ivr.ErrRecordingFetch, err)
		}
		return decodeAudio(io.NopCloser(bytes.NewReader(rec.Data)), a.fetcher.MaxBytes(), func() {})
	}
	body, cancel, err := f.open(ctx, recordingURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ivr.ErrRecordingFetch, err)
	}
	return decodeAudio(body, f.maxBytes, cancel)
}

// open starts downloading a recording: the response body, positioned at
// its first byte, and the function that releases it. Failures before the
// body (a refused URL, a status, a connection error) are retried once as
// [Fetcher.Fetch] retries them.
func (f *Fetcher) open(ctx context.Context, raw string) (io.ReadCloser, context.CancelFunc, error) {
	u, err := f.CheckURL(raw)
	if err != nil {
		return nil, nil, err
	}
	for attempt := 1; ; attempt++ {
		body, cancel, err := f.openOnce(ctx, u)
		if err == nil {
			return body, cancel, nil
		}
		if attempt == 2 || !retryable(err) || ctx.Err() != nil {
			return nil, nil, err
		}
		f.log.LogAttrs(ctx, slog.LevelInfo, "recording fetch failed; retrying",
			slog.String("host", u.Hostname()), slog.String("error", err.Error()))
	}
}

func (f *Fetcher) openOnce(ctx context.Context, u *url.URL) (io.ReadCloser, context.CancelFunc, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("%w: %w", ErrURLNotAllowed, err)
	}
	req.Header.Set("Accept", "audio/wav, audio/x-wav, audio/mpeg, audio/*;q=0.9, */*;q=0.1")
	resp, err := f.client.Do(req)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("kookoo: fetch recording: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		cancel()
		return nil, nil, &statusError{code: resp.StatusCode}
	}
	if resp.ContentLength > f.maxBytes {
		resp.Body.Close()
		cancel()
		return nil, nil, fmt.Errorf("%w: content-length %d (limit %d)", ErrRecordingTooLarge, resp.ContentLength, f.maxBytes)
	}
	return resp.Body, cancel, nil
}

// fetchErrors marks read errors of a download as fetch failures, so a
// connection that breaks mid-recording is not taken for bad audio.
type fetchErrors struct{ r io.Reader }

func (e fetchErrors) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("%w: read recording: %w", ivr.ErrRecordingFetch, err)
	}
	return n, err
}

// decodeAudio sniffs the start of body and returns a reader of its audio
// at 8 kHz: streamed for WAV, decoded whole for MP3.
func decodeAudio(body io.ReadCloser, maxBytes int64, release func()) (ivr.PCMReader, error) {
	closeAll := func() {
		body.Close()
		release()
	}
	br := bufio.NewReaderSize(fetchErrors{body}, 512)
	head, err := br.Peek(4)
	switch {
	case len(head) == 0 && errors.Is(err, io.EOF):
		closeAll()
		return nil, fmt.Errorf("%w: empty recording", ivr.ErrRecordingEmpty)
	case err != nil && !errors.Is(err, io.EOF):
		closeAll()
		return nil, err
	}
	switch {
	case bytes.HasPrefix(head, []byte("RIFF")), bytes.HasPrefix(head, []byte("RF64")), bytes.HasPrefix(head, []byte("RIFX")):
		w, err := audio.NewWAVReader(br, maxBytes, audio.SampleRate)
		if err != nil {
			closeAll()
			return nil, audioError(err)
		}
		return &streamedAudio{r: w, close: closeAll}, nil
	}
	// MP3 and anything else: audio.Decode reads whole and tells them apart.
	pcm, err := audio.Decode(br, maxBytes)
	closeAll()
	if err == nil && pcm.Rate != audio.SampleRate {
		pcm, err = audio.Resample(pcm, audio.SampleRate)
	}
	if err == nil && len(pcm.Samples) == 0 {
		err = audio.ErrEmpty
	}
	if err != nil {
		return nil, audioError(err)
	}
	return &bufferedAudio{pcm: pcm.Samples}, nil
}

// audioError maps the audio package's errors to the voice service's.
func audioError(err error) error {
	switch {
	case errors.Is(err, ivr.ErrRecordingFetch):
		return err
	case errors.Is(err, audio.ErrEmpty):
		return fmt.Errorf("%w: %w", ivr.ErrRecordingEmpty, err)
	case errors.Is(err, audio.ErrTooLarge):
		return fmt.Errorf("%w: %w: %w", ivr.ErrRecordingFetch, ErrRecordingTooLarge, err)
	}
	return fmt.Errorf("%w: %w", ivr.ErrRecordingFormat, err)
}

// streamedAudio is a WAV recording decoded as it downloads.
type streamedAudio struct {
	r     *audio.WAVReader
	close func()
}

func (s *streamedAudio) ReadPCM(p []int16) (int, error) {
	n, err := s.r.ReadPCM(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = audioError(err)
	}
	return n, err
}

func (s *streamedAudio) Close() error {
	s.close()
	return nil
}

// bufferedAudio is a recording decoded whole.
type bufferedAudio struct{ pcm []int16 }

func (b *bufferedAudio) ReadPCM(p []int16) (int, error) {
	if len(b.pcm) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.pcm)
	b.pcm = b.pcm[n:]
	return n, nil
}

func (b *bufferedAudio) Close() error {
	b.pcm = nil
	return nil
}
