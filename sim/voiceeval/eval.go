package voiceeval

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/koelvoice/koel/audio"
	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot/faq"
	"github.com/koelvoice/koel/ivr/demo"
)

// Config configures [Run].
type Config struct {
	// Split selects the corpus split: SplitTune, SplitTest or SplitAll
	// ("" = SplitTest).
	Split string
	// Synths are the callers (nil = DefaultSynths). Synths whose engine is
	// not installed make Run fail.
	Synths []Synth
	// Variants are the telephone variants (nil = DefaultVariants).
	Variants []Variant
	// PerKind, when positive, keeps only the first PerKind items of each
	// kind per synth and variant, spread over the corpus (a representative
	// subset for quick runs and tests).
	PerKind int
	// Workers is the number of calls in flight (0 = 2).
	Workers int
	// CacheDir caches rendered audio ("" = DefaultCacheDir).
	CacheDir string
	// Stack configures the koel stack under test.
	Stack StackConfig
	// Path is PathKooKoo (the default: KooKoo Record events through the
	// call state machine), PathDirect (recogniser and bot only, with the
	// bands of Bands simulated) or PathText (the KooKoo path with a
	// recogniser that hears the corpus text perfectly: Synths and Variants
	// are ignored, and the one caller is EngineText).
	Path string
	// Bands are the confidence bands PathDirect simulates.
	Bands Bands
	// Progress, when set, receives a line per synth as it finishes.
	Progress io.Writer
	// Logger receives the stack's warnings (nil = discard).
	Logger *slog.Logger
}

// Paths an evaluation can take through koel.
const (
	PathKooKoo = "kookoo"
	PathDirect = "direct"
	// PathText sends each utterance's text through the KooKoo call as a
	// transcript heard at confidence 1: the understanding side's ceiling.
	PathText = "text"
)

// Bands are the confidence bands of a voice turn: a transcript under
// MinSTT is asked again; a bot reply at or above Answer is spoken; a reply
// between the bot's threshold and Answer is confirmed ("Do you want to
// know about ...?"); a fallback is asked again.
type Bands struct {
	MinSTT float64
	Answer float64
}

// Outcome is what happened to one utterance.
type Outcome struct {
	Synth   Synth
	Variant Variant
	Item    Item
	// Transcript is what the recogniser heard (the first turn's).
	Transcript string
	Confidence float64
	// Answered is the FAQ node koel answered with on the first reply, ""
	// when it answered none (re-prompt, fallback or confirmation).
	Answered string
	// Confirmed is the topic of the confirmation koel asked on the first
	// reply, "" when it asked none.
	Confirmed string
	// Final is the node answered after the confirmation, when one was
	// asked.
	Final string
	// SpeechMS and STTMS come from the stored turn; RecordMS is the
	// Record event's round trip seen by KooKoo.
	SpeechMS, STTMS, RecordMS int64
	// Reply is koel's first reply.
	Reply string
	// Direct path only: the bot's node and confidence, whether the
	// recogniser was unsure (under Bands.MinSTT), and whether a yes to a
	// confirmation of the node was understood (when one was asked).
	BotNode string
	BotConf float64
	Unsure  bool
	YesOK   bool
}

// Figures summarize the outcomes of one group of utterances.
type Figures struct {
	Name      string `json:"name"`
	Questions int    `json:"questions"`
	OffTopic  int    `json:"offtopic"`
	Answers   int    `json:"answers"`
	// Ratios in [0, 1].
	FirstRight float64 `json:"first_right"`
	WithinOne  float64 `json:"within_one_confirmation"`
	// WithinOneKey counts a confirmation of the expected node as right:
	// the caller answering with key 1 instead of a spoken yes.
	WithinOneKey float64 `json:"within_one_confirmation_key"`
	// YesHeard is, of the questions whose confirmation named the expected
	// topic, the share whose spoken yes got the answer: it tells a
	// confirmation the caller could not get through by voice (the yes
	// misheard) from one that named the wrong topic. 0 when no
	// confirmation named the expected topic.
	YesHeard float64 `json:"confirmed_yes_heard"`
	// NoTakenAsYes is, of the confirmations the harness answered no (the
	// topic was not the expected one, or the speech was off-topic), the
	// share koel answered anyway: a spoken no misheard as a yes.
	NoTakenAsYes      float64 `json:"confirmed_no_taken_as_yes"`
	Confirmations     float64 `json:"confirmations_asked"`
	ConfidentlyWrong  float64 `json:"confidently_wrong"`
	OffTopicRejected  float64 `json:"offtopic_rejected"`
	AnswersUnderstood float64 `json:"answers_understood"`
	WordAccuracy      float64 `json:"word_accuracy"`
	RTF               float64 `json:"stt_rtf"`
	RecordP50MS       float64 `json:"record_p50_ms"`
	RecordP95MS       float64 `json:"record_p95_ms"`
}

// Report is the result of one evaluation.
type Report struct {
	Split    string    `json:"split"`
	Variants []Variant `json:"variants"`
	// Engines has one row per synthesizer engine, Voices one per voice.
	Engines  []Figures `json:"engines"`
	Voices   []Figures `json:"voices"`
	Total    Figures   `json:"total"`
	Outcomes []Outcome `json:"-"`
	Elapsed  float64   `json:"elapsed_seconds"`
}

// confirmPrompt finds the topic of a confirmation prompt ("Do you want to
// know about delivery charges?", ivr.ConfirmTemplate); agentPrompt is the
// confirmation of a request for an agent (ivr.ConfirmAgentMessage).
var (
	confirmPrompt = regexp.MustCompile(`(?i)do you want to know about ([^?.!]+)`)
	agentPrompt   = regexp.MustCompile(`(?i)do you want to (talk|speak) to an agent`)
)

// answers maps each node's first bot-says message to the node.
type answers struct {
	first map[string]string
}

func demoAnswers() (answers, error) {
	nodes, err := faq.ParseCSV(bytes.NewReader(demo.FAQ()), 1<<20)
	if err != nil {
		return answers{}, fmt.Errorf("voiceeval: demo FAQ: %w", err)
	}
	a := answers{first: map[string]string{}}
	for _, n := range nodes {
		if len(n.BotSays) > 0 {
			a.first[n.BotSays[0]] = n.Name
		}
	}
	return a, nil
}

// node returns the FAQ node whose answer reply speaks, "" for none.
func (a answers) node(r Reply) string {
	for _, t := range r.Texts {
		if n, ok := a.first[t]; ok {
			return n
		}
	}
	text := r.Text()
	for msg, n := range a.first {
		if strings.Contains(text, msg) {
			return n
		}
	}
	return ""
}

// confirmation returns the topic koel asks to confirm in r, "" for none.
func confirmation(r Reply) string {
	if agentPrompt.MatchString(r.Text()) {
		return faq.TopicTitle(faq.DefaultHandoffNode)
	}
	m := confirmPrompt.FindStringSubmatch(r.Text())
	if m == nil {
		return ""
	}
	return strings.ToLower(strings.TrimSpace(m[1]))
}

// unknownTopic stands for a confirmation whose prompt names no topic koel
// recognises (the turn's band says confirm): it is answered no.
const unknownTopic = "?"

type job struct {
	synth   Synth
	variant Variant
	item    Item
}

// Run renders the corpus, plays it to a new stack and returns the figures.
func Run(ctx context.Context, cfg Config) (Report, error) {
	start := time.Now()
	items, err := Corpus()
	if err != nil {
		return Report{}, err
	}
	if cfg.Path != "" && cfg.Path != PathKooKoo && cfg.Path != PathDirect && cfg.Path != PathText {
		return Report{}, fmt.Errorf("voiceeval: path %q, want kookoo, direct or text", cfg.Path)
	}
	split := cfg.Split
	if split == "" {
		split = SplitTest
	}
	if split != SplitTune && split != SplitTest && split != SplitAll {
		return Report{}, fmt.Errorf("voiceeval: split %q, want tune, test or all", split)
	}
	items = Select(items, split)
	synths := cfg.Synths
	if synths == nil {
		synths = DefaultSynths()
	}
	variants := cfg.Variants
	if variants == nil {
		variants = DefaultVariants()
	}
	sc := cfg.Stack
	if sc.Logger == nil {
		sc.Logger = cfg.Logger
	}
	var speak speaker
	if cfg.Path == PathText {
		synths, variants = []Synth{textSynth}, []Variant{textVariant}
		ear := newPerfectEar()
		sc.Transcriber = ear
		speak = func(_ context.Context, _ Synth, _ Variant, text, _ string) (audio.PCM, error) {
			return ear.utterance(text), nil
		}
	} else {
		for _, s := range synths {
			if err := Available(s.Engine); err != nil {
				return Report{}, err
			}
		}
		rend, err := NewRenderer(cfg.CacheDir)
		if err != nil {
			return Report{}, err
		}
		speak = func(ctx context.Context, s Synth, v Variant, text, seed string) (audio.PCM, error) {
			speech, err := rend.Speech(ctx, s, text)
			if err != nil {
				return audio.PCM{}, err
			}
			return Telephone(speech, v, Seed(s, seed)), nil
		}
	}
	if cfg.PerKind > 0 {
		items = subset(items, cfg.PerKind)
	}
	ans, err := demoAnswers()
	if err != nil {
		return Report{}, err
	}
	st, err := NewStack(ctx, sc)
	if err != nil {
		return Report{}, err
	}
	defer st.Close()

	var jobs []job
	for _, s := range synths {
		for _, v := range variants {
			for _, it := range items {
				jobs = append(jobs, job{s, v, it})
			}
		}
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = 2
	}
	out := make([]Outcome, len(jobs))
	errs := make([]error, len(jobs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if cfg.Path == PathDirect {
					out[i], errs[i] = understand(ctx, st, speak, cfg.Bands, jobs[i])
				} else {
					out[i], errs[i] = play(ctx, st, speak, ans, jobs[i])
				}
			}
		}()
	}
feed:
	for i := range jobs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
		if cfg.Progress != nil && (i+1)%100 == 0 {
			fmt.Fprintf(cfg.Progress, "voiceeval: %d/%d utterances\n", i+1, len(jobs))
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}
	for _, err := range errs {
		if err != nil {
			return Report{}, err
		}
	}
	rep := summarize(split, variants, synths, out)
	rep.Elapsed = time.Since(start).Seconds()
	return rep, nil
}

// subset keeps n items of each kind, spread evenly over the corpus order.
func subset(items []Item, n int) []Item {
	byKind := map[Kind][]Item{}
	for _, it := range items {
		byKind[it.Kind] = append(byKind[it.Kind], it)
	}
	var out []Item
	for _, k := range []Kind{KindQuestion, KindOffTopic, KindAnswer} {
		list := byKind[k]
		if len(list) <= n {
			out = append(out, list...)
			continue
		}
		for i := range n {
			out = append(out, list[i*len(list)/n])
		}
	}
	return out
}

// speaker returns the caller's recording of text said by s over line v;
// seed keys the line noise.
type speaker func(ctx context.Context, s Synth, v Variant, text, seed string) (audio.PCM, error)

// play runs one utterance as one call: NewCall, the Record event, and for
// a confirmation a synthesized yes (the confirmed topic is the expected
// node's) or no.
func play(ctx context.Context, st *Stack, speak speaker, ans answers, j job) (Outcome, error) {
	o := Outcome{Synth: j.synth, Variant: j.variant, Item: j.item}
	rec, err := speak(ctx, j.synth, j.variant, j.item.Text, j.item.Text)
	if err != nil {
		return o, err
	}
	call, _, err := st.NewCall(ctx)
	if err != nil {
		return o, err
	}
	r, took, err := call.Say(ctx, rec)
	if err != nil {
		return o, err
	}
	o.RecordMS = took.Milliseconds()
	o.Reply = r.Text()
	o.Answered = ans.node(r)
	if o.Answered == "" {
		o.Confirmed = confirmation(r)
	}
	turns, err := call.Turns(ctx)
	if err != nil {
		return o, fmt.Errorf("voiceeval: turns: %w", err)
	}
	if len(turns) > 0 {
		o.Transcript, o.Confidence = turns[0].Transcript, turns[0].Confidence
		o.SpeechMS, o.STTMS = turns[0].SpeechMS, turns[0].STTMS
		if turns[0].Understanding == ivr.UnderstandingConfirm && o.Confirmed == "" && o.Answered == "" {
			o.Confirmed = unknownTopic
		}
	}
	if o.Confirmed != "" && r.Record {
		word := "no"
		if j.item.Kind == KindQuestion && o.Confirmed == faq.TopicTitle(j.item.Expect) {
			word = "yes"
		}
		yes, err := speak(ctx, j.synth, j.variant, word, word+j.item.Text)
		if err != nil {
			return o, err
		}
		r2, _, err := call.Say(ctx, yes)
		if err != nil {
			return o, err
		}
		o.Final = ans.node(r2)
	}
	if !r.Hangup {
		if err := call.Hangup(ctx); err != nil {
			return o, err
		}
	}
	return o, nil
}

// understand runs one utterance on the direct path and simulates the
// bands: the confirmation is answered with a synthesized yes or no whose
// transcript must read as that answer.
func understand(ctx context.Context, st *Stack, speak speaker, b Bands, j job) (Outcome, error) {
	o := Outcome{Synth: j.synth, Variant: j.variant, Item: j.item}
	rec, err := speak(ctx, j.synth, j.variant, j.item.Text, j.item.Text)
	if err != nil {
		return o, err
	}
	res, resp, took, err := st.Understand(ctx, rec)
	if err != nil {
		return o, err
	}
	o.Transcript, o.Confidence = res.Text, res.Confidence
	o.SpeechMS, o.STTMS, o.RecordMS = rec.Duration().Milliseconds(), took.Milliseconds(), took.Milliseconds()
	o.Reply = fmt.Sprintf("node=%s conf=%.2f alts=%d", resp.Node, resp.Confidence, len(res.Alternatives))
	if res.Text == "" || resp.Fallback || resp.Node == "" {
		return o, nil
	}
	o.BotNode, o.BotConf, o.Unsure = resp.Node, resp.Confidence, res.Confidence < b.MinSTT
	if resp.Confidence >= b.Answer && !o.Unsure {
		o.Answered = resp.Node
		return o, nil
	}
	o.Confirmed = resp.Topic
	word := "no"
	if j.item.Kind == KindQuestion && resp.Node == j.item.Expect {
		word = "yes"
	}
	yes, err := speak(ctx, j.synth, j.variant, word, word+j.item.Text)
	if err != nil {
		return o, err
	}
	r2, _, _, err := st.Understand(ctx, yes)
	if err != nil {
		return o, err
	}
	if AnswerOf(r2.Text) == AnswerYes {
		o.Final = resp.Node
		o.YesOK = true
	}
	return o, nil
}

// SweepRow is the outcome of one answer threshold in [Report.Sweep].
type SweepRow struct {
	Answer           float64 `json:"answer"`
	FirstRight       float64 `json:"first_right"`
	WithinOne        float64 `json:"within_one_confirmation"`
	WithinOneKey     float64 `json:"within_one_confirmation_key"`
	Confirmations    float64 `json:"confirmations_asked"`
	ConfidentlyWrong float64 `json:"confidently_wrong"`
	OffTopicRejected float64 `json:"offtopic_rejected"`
}

// Sweep recomputes the direct path's figures for other answer thresholds
// (the confirm floor stays the bot's threshold; unsure transcripts are
// always confirmed). It needs a run whose Bands.Answer was above every
// threshold swept, so that every matched utterance was confirmed and its
// yes heard or not.
func (r Report) Sweep(answers []float64) []SweepRow {
	var rows []SweepRow
	for _, a := range answers {
		var q, off, first, within, withinKey, confirms, wrong, rejected int
		for _, o := range r.Outcomes {
			matched := o.BotNode != ""
			answered := matched && o.BotConf >= a && !o.Unsure
			confirm := matched && !answered
			switch o.Item.Kind {
			case KindQuestion:
				q++
				right := o.BotNode == o.Item.Expect
				switch {
				case answered && right:
					first++
					within++
					withinKey++
				case answered:
					wrong++
				case confirm && right && o.YesOK:
					within++
				}
				if confirm && right {
					withinKey++
				}
			case KindOffTopic:
				off++
				if !answered {
					rejected++
				}
			default:
				continue
			}
			if confirm {
				confirms++
			}
		}
		ratio := func(n, d int) float64 {
			if d == 0 {
				return 0
			}
			return float64(n) / float64(d)
		}
		rows = append(rows, SweepRow{Answer: a, FirstRight: ratio(first, q), WithinOne: ratio(within, q), WithinOneKey: ratio(withinKey, q),
			Confirmations: ratio(confirms, q+off), ConfidentlyWrong: ratio(wrong, q), OffTopicRejected: ratio(rejected, off)})
	}
	return rows
}

// WriteSweep prints Sweep(answers) as a table.
func (r Report) WriteSweep(w io.Writer, answers []float64) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%-7s %6s %7s %7s %7s %6s %6s\n", "answer", "first", "within1", "w1(key)", "confirm", "wrong", "offrej")
	for _, row := range r.Sweep(answers) {
		fmt.Fprintf(&b, "%-7.2f %5.1f%% %6.1f%% %6.1f%% %6.1f%% %5.1f%% %5.1f%%\n", row.Answer, 100*row.FirstRight, 100*row.WithinOne, 100*row.WithinOneKey,
			100*row.Confirmations, 100*row.ConfidentlyWrong, 100*row.OffTopicRejected)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// summarize computes the figures per engine, per voice and overall.
func summarize(split string, variants []Variant, synths []Synth, out []Outcome) Report {
	rep := Report{Split: split, Variants: variants, Outcomes: out}
	var engines []string
	for _, s := range synths {
		if !slices.Contains(engines, s.Engine) {
			engines = append(engines, s.Engine)
		}
	}
	for _, e := range engines {
		rep.Engines = append(rep.Engines, figures(e, out, func(o Outcome) bool { return o.Synth.Engine == e }))
	}
	for _, s := range synths {
		rep.Voices = append(rep.Voices, figures(s.String(), out, func(o Outcome) bool { return o.Synth == s }))
	}
	rep.Total = figures("all", out, func(Outcome) bool { return true })
	return rep
}

func figures(name string, out []Outcome, keep func(Outcome) bool) Figures {
	f := Figures{Name: name}
	var (
		first, within, withinKey, confirms, wrong, rejected, understood int
		rightTopic, yesHeard, saidNo, noAsYes                           int
		refWords, edits                                                 int
		speechMS, sttMS                                                 int64
		lat                                                             []float64
	)
	for _, o := range out {
		if !keep(o) {
			continue
		}
		speechMS += o.SpeechMS
		sttMS += o.STTMS
		lat = append(lat, float64(o.RecordMS))
		switch o.Item.Kind {
		case KindQuestion:
			f.Questions++
			ref := words(o.Item.Text)
			refWords += len(ref)
			edits += editDistance(ref, words(o.Transcript))
			if o.Confirmed != "" {
				confirms++
			}
			switch {
			case o.Answered == o.Item.Expect:
				first++
				within++
				withinKey++
			case o.Answered != "":
				wrong++
			case o.Confirmed != "":
				if o.Final == o.Item.Expect {
					within++
				}
				if o.Confirmed == faq.TopicTitle(o.Item.Expect) {
					withinKey++
					rightTopic++
					if o.Final == o.Item.Expect {
						yesHeard++
					}
				} else {
					saidNo++
					if o.Final != "" {
						noAsYes++
					}
				}
			}
		case KindOffTopic:
			f.OffTopic++
			if o.Confirmed != "" {
				confirms++
				saidNo++
				if o.Final != "" {
					noAsYes++
				}
			}
			if o.Answered == "" {
				rejected++
			}
		case KindAnswer:
			f.Answers++
			if AnswerOf(o.Transcript) == o.Item.Expect {
				understood++
			}
		}
	}
	ratio := func(n, d int) float64 {
		if d == 0 {
			return 0
		}
		return float64(n) / float64(d)
	}
	f.FirstRight = ratio(first, f.Questions)
	f.WithinOne = ratio(within, f.Questions)
	f.WithinOneKey = ratio(withinKey, f.Questions)
	f.YesHeard = ratio(yesHeard, rightTopic)
	f.NoTakenAsYes = ratio(noAsYes, saidNo)
	f.Confirmations = ratio(confirms, f.Questions+f.OffTopic)
	f.ConfidentlyWrong = ratio(wrong, f.Questions)
	f.OffTopicRejected = ratio(rejected, f.OffTopic)
	f.AnswersUnderstood = ratio(understood, f.Answers)
	if refWords > 0 {
		f.WordAccuracy = max(0, 1-float64(edits)/float64(refWords))
	}
	if speechMS > 0 {
		f.RTF = float64(sttMS) / float64(speechMS)
	}
	f.RecordP50MS, f.RecordP95MS = percentile(lat, 0.50), percentile(lat, 0.95)
	return f
}

// AnswerOf classifies a transcript of an answer to a confirmation: yes,
// no, cancel, or "" when it is none of them. Cancel words win over yes and
// no ("no cancel it"), no wins over yes ("yes no").
func AnswerOf(transcript string) string {
	ws := words(transcript)
	has := func(set ...string) bool {
		for _, w := range ws {
			if slices.Contains(set, w) {
				return true
			}
		}
		return false
	}
	switch {
	case has("cancel", "stop", "forget", "never", "leave", "back"):
		return AnswerCancel
	case has("no", "nope", "not", "wrong", "nahi"):
		return AnswerNo
	case has("yes", "yeah", "yup", "correct", "sure", "right", "absolutely", "okay", "ok", "exactly", "haan"):
		return AnswerYes
	}
	return ""
}

// words lower-cases text and splits it into words, dropping punctuation
// and apostrophes.
func words(text string) []string {
	text = strings.ToLower(strings.ReplaceAll(text, "'", ""))
	return strings.FieldsFunc(text, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	})
}

// editDistance is the word-level Levenshtein distance.
func editDistance(a, b []string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	return s[int(float64(len(s)-1)*p+0.5)]
}

// WriteTable prints the report as a text table.
func (r Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "split %s, variants %v, %.0f s\n", r.Split, r.Variants, r.Elapsed)
	fmt.Fprintf(&b, "%-22s %5s %6s %7s %7s %6s %6s %7s %6s %6s %7s %6s %6s %6s %9s\n",
		"synthesizer", "q", "first", "within1", "w1(key)", "yesok", "no>yes", "confirm", "wrong", "offrej", "yes/no", "words", "rtf", "p50ms", "p95ms")
	row := func(f Figures) {
		fmt.Fprintf(&b, "%-22s %5d %5.1f%% %6.1f%% %6.1f%% %5.1f%% %5.1f%% %6.1f%% %5.1f%% %5.1f%% %6.1f%% %5.1f%% %6.3f %6.0f %9.0f\n",
			f.Name, f.Questions, 100*f.FirstRight, 100*f.WithinOne, 100*f.WithinOneKey, 100*f.YesHeard, 100*f.NoTakenAsYes, 100*f.Confirmations, 100*f.ConfidentlyWrong,
			100*f.OffTopicRejected, 100*f.AnswersUnderstood, 100*f.WordAccuracy, f.RTF, f.RecordP50MS, f.RecordP95MS)
	}
	for _, f := range r.Engines {
		row(f)
	}
	b.WriteString("\n")
	for _, f := range r.Voices {
		row(f)
	}
	b.WriteString("\n")
	row(r.Total)
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints the report as JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteMisses prints every question not answered right on the first reply
// and every off-topic utterance answered, for tuning.
func (r Report) WriteMisses(w io.Writer) error {
	var b strings.Builder
	for _, o := range r.Outcomes {
		switch {
		case o.Item.Kind == KindQuestion && o.Answered != o.Item.Expect:
			fmt.Fprintf(&b, "MISS %-18s %-6s %-16s %q -> %q (%.2f) answered=%q confirm=%q\n", o.Synth, o.Variant, o.Item.Expect, o.Item.Text, o.Transcript, o.Confidence, o.Answered, o.Confirmed)
		case o.Item.Kind == KindOffTopic && o.Answered != "":
			fmt.Fprintf(&b, "OFF  %-18s %-6s %q -> %q (%.2f) answered=%q\n", o.Synth, o.Variant, o.Item.Text, o.Transcript, o.Confidence, o.Answered)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
