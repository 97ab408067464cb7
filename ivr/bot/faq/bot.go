package faq

import (
	"container/list"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot"
)

// NodeSource is what the FAQ bot reads: the business (for its FAQVersion and
// fallback message) and its active nodes. [github.com/koelvoice/koel/ivr/store.Store]
// implements it.
type NodeSource interface {
	GetBusiness(ctx context.Context, id int64) (ivr.Business, error)
	ListFAQ(ctx context.Context, businessID int64, activeOnly bool) ([]ivr.FAQNode, error)
}

// Defaults of [Options].
const (
	// DefaultCacheSize is how many businesses' matchers a [Bot] keeps.
	DefaultCacheSize = 256
	// BuiltinFallback answers when neither the business nor
	// Options.DefaultFallback has a fallback message.
	BuiltinFallback = "Sorry, I did not understand that. Could you say it another way?"
)

// DefaultMenuWords returns the words a caller may say to steer the bot
// itself rather than ask an FAQ question; [Bot.Phrases] adds them to every
// business's vocabulary. A new slice is returned on each call.
func DefaultMenuWords() []string {
	return []string{
		"yes", "no", "repeat", "help", "menu", "agent", "talk to an agent", "goodbye",
		"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
	}
}

// Options configure a [Bot]. The zero value gives the defaults.
type Options struct {
	// Threshold is the lowest match score answered; zero means
	// DefaultThreshold.
	Threshold float64
	// HandoffNodes name the nodes that ask for a human agent; empty means
	// [DefaultHandoffNode].
	HandoffNodes []string
	// Logger receives debug lines about matches (node and score, never the
	// user's text). Nil discards.
	Logger *slog.Logger
	// DefaultFallback answers when a business has no FallbackMessage; empty
	// means BuiltinFallback.
	DefaultFallback string
	// CacheSize bounds how many businesses' matchers are kept (least
	// recently used are dropped); zero means DefaultCacheSize.
	CacheSize int
	// MenuWords are added to every business's [Bot.Phrases]; nil means
	// DefaultMenuWords, an empty non-nil slice adds none.
	MenuWords []string
	// LatticeWeight is the share of a voice request's lattice evidence
	// (bot.Request.Lattice) in a node's score ([Matcher.MatchLattice]);
	// zero leaves it out.
	LatticeWeight float64
}

// Bot answers from a business's FAQ: it implements [bot.Bot] and
// [bot.Vocabulary]. Each business's matcher is built on first use and cached
// under the business's FAQVersion, so a new import is picked up on the next
// message (every Reply reads the business to learn its version). It is safe
// for concurrent use.
//
// # Voice requests and confidence bands
//
// A voice request with N-best [bot.Request.Alternatives] is scored over all
// of them ([Matcher.MatchAlternatives]); the Response's Confidence is that
// combined score and Topic names the node for a confirmation prompt.
// Thresholds measured with `koel eval voice -path direct -answer 1.01` on
// the corpus's tune split (README, "Voice understanding: measured"): answer
// at Confidence ≥ 0.6 (confidently wrong under 4 %), confirm between the
// bot's threshold (DefaultThreshold, 0.42) and 0.6, ask again below (the
// bot falls back there). With pocketsphinx on telephone speech most
// transcripts are under the recogniser's own minimum and are confirmed
// whatever this confidence, so confirmations stay above one in three until
// the acoustic model improves.
type Bot struct {
	src          NodeSource
	log          *slog.Logger
	threshold    float64
	handoff      []string
	fallback     string
	menuWords    []string
	cacheSize    int
	lattice      float64
	mu           sync.Mutex
	entries      map[int64]*list.Element // business id -> element holding *faqEntry
	lru          *list.List              // most recently used first
	matcherCount int                     // matchers built, for tests
}

// faqEntry is one business's FAQ at one version.
type faqEntry struct {
	businessID int64
	version    int64
	matcher    *Matcher
	phrases    []string
}

var (
	_ bot.Bot        = (*Bot)(nil)
	_ bot.Vocabulary = (*Bot)(nil)
)

// New returns an FAQ bot reading nodes from src.
func New(src NodeSource, opts Options) *Bot {
	b := &Bot{
		src:       src,
		log:       opts.Logger,
		threshold: opts.Threshold,
		handoff:   slices.Clone(opts.HandoffNodes),
		fallback:  opts.DefaultFallback,
		menuWords: opts.MenuWords,
		cacheSize: opts.CacheSize,
		lattice:   opts.LatticeWeight,
		entries:   map[int64]*list.Element{},
		lru:       list.New(),
	}
	if b.log == nil {
		b.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if b.fallback == "" {
		b.fallback = BuiltinFallback
	}
	if b.menuWords == nil {
		b.menuWords = DefaultMenuWords()
	}
	if b.cacheSize <= 0 {
		b.cacheSize = DefaultCacheSize
	}
	return b
}

// Reply answers req from the business's FAQ. Text that is empty or only
// spaces gets the fallback without matching. The reply is the best node's
// bot-says, one [bot.Message] per "<m>" part, with Node and Confidence set
// and Handoff for handoff nodes; below the threshold it is the business's
// FallbackMessage (or Options.DefaultFallback) with Fallback set and the best
// score as Confidence. Failing to read the business or its nodes returns an
// error wrapping [bot.ErrUnavailable].
func (b *Bot) Reply(ctx context.Context, req bot.Request) (bot.Response, error) {
	biz, err := b.src.GetBusiness(ctx, req.BusinessID)
	if err != nil {
		return bot.Response{}, fmt.Errorf("%w: faq: business %d: %w", bot.ErrUnavailable, req.BusinessID, err)
	}
	if strings.TrimSpace(req.Text) == "" {
		return b.fallbackResponse(biz, 0), nil
	}
	e, err := b.entry(ctx, biz)
	if err != nil {
		return bot.Response{}, err
	}
	var m Match
	switch {
	case req.Voice && b.lattice > 0 && len(req.Lattice) > 0:
		m = e.matcher.MatchLattice(voiceAlternatives(req), latticeWords(req.Lattice), b.lattice)
	case req.Voice && len(req.Alternatives) > 1:
		m = e.matcher.MatchAlternatives(voiceAlternatives(req))
	default:
		m = e.matcher.Match(req.Text)
	}
	node := ""
	if m.Node != nil {
		node = m.Node.Name
	}
	b.log.LogAttrs(ctx, slog.LevelDebug, "faq match",
		slog.Int64("business_id", biz.ID), slog.String("node", node),
		slog.Float64("score", m.Score), slog.Bool("ok", m.OK), slog.Bool("voice", req.Voice))
	if !m.OK || len(m.Node.BotSays) == 0 {
		return b.fallbackResponse(biz, m.Score), nil
	}
	support, words := e.matcher.Support(req.Text, m.Node)
	msgs := make([]bot.Message, len(m.Node.BotSays))
	for i, s := range m.Node.BotSays {
		msgs[i] = bot.Message{Text: s}
	}
	return bot.Response{
		Messages:   msgs,
		Node:       m.Node.Name,
		Confidence: m.Score,
		Support:    support,
		Words:      words,
		Handoff:    m.Handoff,
		Topic:      TopicTitle(m.Node.Name),
	}, nil
}

// TopicTitle derives a short human title from an FAQ node name for
// confirmation prompts: separators become spaces and the result is lower
// case, so "delivery_charges" and "Delivery-Charges" give "delivery charges".
func TopicTitle(node string) string {
	f := strings.FieldsFunc(strings.ToLower(node), func(r rune) bool {
		return r == '_' || r == '-' || r == '.' || r == '/' || r == ' ' || r == '\t'
	})
	return strings.Join(f, " ")
}

func (b *Bot) fallbackResponse(biz ivr.Business, score float64) bot.Response {
	text := biz.FallbackMessage
	if strings.TrimSpace(text) == "" {
		text = b.fallback
	}
	return bot.Response{
		Messages:   []bot.Message{{Text: text}},
		Confidence: score,
		Fallback:   true,
	}
}

// Phrases returns, for speech recognition, every active node's user-says
// (normalised: lower case, punctuation removed, duplicates dropped) followed
// by the menu words, and the business's FAQVersion.
func (b *Bot) Phrases(ctx context.Context, businessID int64) ([]string, int64, error) {
	biz, err := b.src.GetBusiness(ctx, businessID)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: faq: business %d: %w", bot.ErrUnavailable, businessID, err)
	}
	e, err := b.entry(ctx, biz)
	if err != nil {
		return nil, 0, err
	}
	return slices.Clone(e.phrases), e.version, nil
}

// entry returns the business's cached FAQ at biz.FAQVersion, loading it
// when missing or stale.
func (b *Bot) entry(ctx context.Context, biz ivr.Business) (*faqEntry, error) {
	b.mu.Lock()
	if el, ok := b.entries[biz.ID]; ok {
		e := el.Value.(*faqEntry)
		if e.version == biz.FAQVersion {
			b.lru.MoveToFront(el)
			b.mu.Unlock()
			return e, nil
		}
	}
	b.mu.Unlock()

	// Load outside the lock: a slow store must not block other businesses.
	// Two concurrent loads of one business both succeed; the newer version
	// stays.
	nodes, err := b.src.ListFAQ(ctx, biz.ID, true)
	if err != nil {
		return nil, fmt.Errorf("%w: faq: nodes of business %d: %w", bot.ErrUnavailable, biz.ID, err)
	}
	e := &faqEntry{
		businessID: biz.ID,
		version:    biz.FAQVersion,
		matcher:    NewMatcher(nodes, MatcherOptions{Threshold: b.threshold, HandoffNodes: b.handoff}),
		phrases:    b.phrases(nodes),
	}
	b.log.LogAttrs(ctx, slog.LevelDebug, "faq loaded",
		slog.Int64("business_id", biz.ID), slog.Int64("faq_version", biz.FAQVersion),
		slog.Int("nodes", e.matcher.Nodes()))

	b.mu.Lock()
	defer b.mu.Unlock()
	b.matcherCount++
	if el, ok := b.entries[biz.ID]; ok {
		if old := el.Value.(*faqEntry); old.version > e.version {
			return e, nil // a newer version is already cached; answer with ours
		}
		el.Value = e
		b.lru.MoveToFront(el)
		return e, nil
	}
	b.entries[biz.ID] = b.lru.PushFront(e)
	for b.lru.Len() > b.cacheSize {
		last := b.lru.Back()
		delete(b.entries, last.Value.(*faqEntry).businessID)
		b.lru.Remove(last)
	}
	return e, nil
}

// phrases builds a business's vocabulary.
func (b *Bot) phrases(nodes []ivr.FAQNode) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		s = speechText(s)
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, n := range nodes {
		if !n.Active {
			continue
		}
		for _, u := range n.UserSays {
			add(u)
		}
	}
	for _, w := range b.menuWords {
		add(w)
	}
	return out
}
