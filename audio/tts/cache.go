package tts

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/koelvoice/koel/audio"
)

// DefaultCacheMemoryBytes is the default in-memory budget of a Cache.
const DefaultCacheMemoryBytes = 64 << 20

// maxCachedFileBytes caps a cached WAV file read from disk.
const maxCachedFileBytes = 32 << 20

// CacheConfig configures a Cache.
type CacheConfig struct {
	// Dir, if set, keeps rendered audio on disk (one WAV per entry) so it
	// survives restarts; "" keeps it in memory only.
	Dir string
	// MaxMemoryBytes bounds the in-memory LRU (2 bytes per sample);
	// default DefaultCacheMemoryBytes.
	MaxMemoryBytes int64
	// Logger receives warnings about the disk store; default discard.
	Logger *slog.Logger
}

// Cache is a Synthesizer that remembers what another Synthesizer rendered,
// keyed by text, voice name and rate. Concurrent requests for the same
// entry render it once. The returned PCM is the caller's own copy.
type Cache struct {
	next Synthesizer
	dir  string
	max  int64
	log  *slog.Logger

	mu       sync.Mutex
	lru      *list.List // of *cacheEntry, most recent first
	entries  map[string]*list.Element
	size     int64
	inflight map[string]*flight
}

type cacheEntry struct {
	key string
	pcm audio.PCM
}

type flight struct {
	done chan struct{}
	pcm  audio.PCM
	err  error
}

var _ Synthesizer = (*Cache)(nil)

// NewCache wraps next. With cfg.Dir set, the directory is created.
func NewCache(next Synthesizer, cfg CacheConfig) (*Cache, error) {
	if next == nil {
		return nil, errors.New("tts: NewCache: nil Synthesizer")
	}
	max := cfg.MaxMemoryBytes
	if max == 0 {
		max = DefaultCacheMemoryBytes
	}
	if max < 0 {
		return nil, fmt.Errorf("tts: negative MaxMemoryBytes %d", max)
	}
	if cfg.Dir != "" {
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("tts: cache dir: %w", err)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Cache{
		next: next, dir: cfg.Dir, max: max, log: log,
		lru: list.New(), entries: map[string]*list.Element{}, inflight: map[string]*flight{},
	}, nil
}

// cacheKey identifies one rendering.
func cacheKey(text string, v Voice) string {
	h := sha256.New()
	h.Write([]byte(text))
	h.Write([]byte{0})
	h.Write([]byte(v.Name))
	h.Write([]byte{0})
	h.Write([]byte(strconv.Itoa(v.Rate)))
	return hex.EncodeToString(h.Sum(nil))
}

// Synthesize returns the cached rendering of text in voice v, rendering it
// with the wrapped Synthesizer on a miss. Errors are not cached.
func (c *Cache) Synthesize(ctx context.Context, text string, v Voice) (audio.PCM, error) {
	key := cacheKey(text, v)
	c.mu.Lock()
	if el, ok := c.entries[key]; ok {
		c.lru.MoveToFront(el)
		p := el.Value.(*cacheEntry).pcm
		c.mu.Unlock()
		return clonePCM(p), nil
	}
	if f, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
			if f.err != nil {
				return audio.PCM{}, f.err
			}
			return clonePCM(f.pcm), nil
		case <-ctx.Done():
			return audio.PCM{}, fmt.Errorf("tts: wait for rendering: %w", ctx.Err())
		}
	}
	f := &flight{done: make(chan struct{})}
	c.inflight[key] = f
	c.mu.Unlock()

	f.pcm, f.err = c.load(ctx, key, text, v)
	c.mu.Lock()
	delete(c.inflight, key)
	if f.err == nil {
		c.addLocked(key, f.pcm)
	}
	c.mu.Unlock()
	close(f.done)
	if f.err != nil {
		return audio.PCM{}, f.err
	}
	return clonePCM(f.pcm), nil
}

// load reads the disk store or renders (and stores) the entry.
func (c *Cache) load(ctx context.Context, key, text string, v Voice) (audio.PCM, error) {
	path := ""
	if c.dir != "" {
		path = filepath.Join(c.dir, key[:2], key+".wav")
		if data, err := os.ReadFile(path); err == nil {
			p, err := audio.DecodeWAV(bytes.NewReader(data), maxCachedFileBytes)
			if err == nil && p.Rate == audio.SampleRate && len(p.Samples) > 0 {
				return p, nil
			}
			c.log.Warn("tts cache: unreadable entry, rendering again", "path", path, "err", err)
		}
	}
	p, err := c.next.Synthesize(ctx, text, v)
	if err != nil {
		return audio.PCM{}, err
	}
	if path != "" {
		if err := writeAtomic(path, p); err != nil {
			c.log.Warn("tts cache: store entry", "err", err)
		}
	}
	return p, nil
}

// writeAtomic writes p as a WAV file via a temporary file and a rename, so
// readers never see half an entry.
func writeAtomic(path string, p audio.PCM) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*.wav")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := audio.EncodeWAV(f, p, audio.EncodingPCM16); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// addLocked inserts an entry and evicts least recently used ones beyond
// the memory budget. Entries larger than the whole budget are not kept.
func (c *Cache) addLocked(key string, p audio.PCM) {
	sz := int64(2 * len(p.Samples))
	if sz > c.max {
		return
	}
	c.entries[key] = c.lru.PushFront(&cacheEntry{key: key, pcm: p})
	c.size += sz
	for c.size > c.max {
		el := c.lru.Back()
		e := el.Value.(*cacheEntry)
		c.lru.Remove(el)
		delete(c.entries, e.key)
		c.size -= int64(2 * len(e.pcm.Samples))
	}
}

// MemoryBytes reports the bytes held in memory.
func (c *Cache) MemoryBytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

func clonePCM(p audio.PCM) audio.PCM {
	return audio.PCM{Rate: p.Rate, Samples: append([]int16(nil), p.Samples...)}
}
