package faq

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/koelvoice/koel/ivr"
)

// Limits of an FAQ CSV file. A file over any of them is rejected whole.
const (
	// DefaultMaxBytes is the largest file read when the caller gives no
	// limit (maxBytes <= 0 in [ParseCSV], MaxBytes == 0 in [ImportOptions]).
	DefaultMaxBytes = 16 << 20
	// MaxRows is the most nodes one file may hold.
	MaxRows = 50000
	// MaxNameBytes is the longest node_name.
	MaxNameBytes = 128
	// MaxUserSays is the most user-says phrases of one node.
	MaxUserSays = 200
	// MaxUserSaysBytes is the longest single user-says phrase.
	MaxUserSaysBytes = 500
	// MaxBotSays is the most bot-says messages of one node.
	MaxBotSays = 20
	// MaxBotSaysBytes is the longest single bot-says message.
	MaxBotSaysBytes = 4000
	// MaxFieldBytes is the longest CSV field.
	MaxFieldBytes = 64 << 10
)

// Separators inside the CSV's fields, as the seed's format defines them.
const (
	// UserSaysSeparator separates a node's user-says phrases.
	UserSaysSeparator = "|"
	// BotSaysSeparator separates a node's bot-says messages (matched
	// without regard to case).
	BotSaysSeparator = "<m>"
)

// Errors of CSV parsing and import.
var (
	// ErrInvalidCSV is wrapped by every [*ParseError]: the file is not a
	// valid FAQ CSV and nothing was imported.
	ErrInvalidCSV = errors.New("faq: invalid csv")
	// ErrTooLarge means the file exceeds its byte limit.
	ErrTooLarge = errors.New("faq: csv too large")
)

// RowError is one problem found in an FAQ CSV. Line is the 1-based line
// where the offending record starts (1 is the header); 0 means the whole file.
type RowError struct {
	Line int
	Msg  string
}

// String formats the error as "line 7: node_name is empty", the form the
// import task API reports.
func (e RowError) String() string {
	if e.Line <= 0 {
		return e.Msg
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

// ParseError lists every bad row of an FAQ CSV. It wraps [ErrInvalidCSV].
type ParseError struct {
	Rows []RowError
}

// maxErrorText is how many rows Error() spells out.
const maxErrorText = 5

// Error summarises the first few problems.
func (e *ParseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "faq: invalid csv: %d problem", len(e.Rows))
	if len(e.Rows) != 1 {
		b.WriteString("s")
	}
	for i, r := range e.Rows {
		if i == maxErrorText {
			fmt.Fprintf(&b, "; and %d more", len(e.Rows)-maxErrorText)
			break
		}
		b.WriteString("; ")
		b.WriteString(r.String())
	}
	return b.String()
}

// Unwrap returns [ErrInvalidCSV].
func (e *ParseError) Unwrap() error { return ErrInvalidCSV }

// Messages returns every problem as "line N: message", for task statuses.
func (e *ParseError) Messages() []string {
	out := make([]string, len(e.Rows))
	for i, r := range e.Rows {
		out[i] = r.String()
	}
	return out
}

// ParseCSV reads an FAQ in the seed's CSV format: a header row naming the
// columns node_name, user_says and bot_says (in any order; "question" and
// "answer" are accepted as the seed's older names), then one node per row.
// User-says are separated by "|", bot-says by "<m>"; standard CSV quoting
// applies. Blank phrases are dropped and repeated user-says of a node are
// kept once.
//
// Parsing is all or nothing: any bad row fails the whole file with a
// [*ParseError] listing every problem found with its line number (a CSV
// syntax error stops the scan, as the rows after it cannot be trusted).
// Duplicate node names are an error. At most maxBytes are read
// (<= 0 means [DefaultMaxBytes]); a longer input fails with [ErrTooLarge].
// The nodes returned are Active and carry no ID or BusinessID.
func ParseCSV(r io.Reader, maxBytes int64) ([]ivr.FAQNode, error) {
	data, err := readLimited(r, maxBytes)
	if err != nil {
		return nil, err
	}
	return parse(data, nil)
}

// readLimited reads r whole, failing when it holds more than maxBytes.
func readLimited(r io.Reader, maxBytes int64) ([]byte, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	data, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("faq: read csv: %w", err)
	}
	if int64(len(data)) > maxBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxBytes)
	}
	return data, nil
}

// columns maps the header's column positions.
type columns struct{ name, userSays, botSays, n int }

// parse turns a whole CSV document into nodes. progress, when not nil, is
// called with (0, rows in the file) and then every 256 rows parsed.
func parse(data []byte, progress func(done, total int)) ([]ivr.FAQNode, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	if !utf8.Valid(data) {
		return nil, &ParseError{Rows: []RowError{{Line: firstInvalidLine(data), Msg: "text is not valid UTF-8"}}}
	}
	total := 0
	if progress != nil {
		total = countRecords(data)
		progress(0, total)
	}
	cr := newReader(data)
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, &ParseError{Rows: []RowError{{Line: 0, Msg: "file is empty: a header node_name,user_says,bot_says is required"}}}
	}
	if err != nil {
		return nil, &ParseError{Rows: []RowError{csvRowError(err)}}
	}
	headerLine, _ := cr.FieldPos(0)
	cols, problem := parseHeader(header)
	if problem != "" {
		return nil, &ParseError{Rows: []RowError{{Line: headerLine, Msg: problem}}}
	}

	var (
		nodes []ivr.FAQNode
		bad   []RowError
		seen  = map[string]int{} // node name -> line
		rows  int
	)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, csv.ErrFieldCount) {
			bad = append(bad, csvRowError(err))
			break
		}
		line, _ := cr.FieldPos(0)
		rows++
		if progress != nil && (rows%256 == 0) {
			progress(rows, total)
		}
		if rows > MaxRows {
			bad = append(bad, RowError{Line: line, Msg: fmt.Sprintf("too many rows: at most %d nodes per file", MaxRows)})
			break
		}
		if len(rec) != cols.n {
			bad = append(bad, RowError{Line: line, Msg: fmt.Sprintf("has %d fields, want %d", len(rec), cols.n)})
			continue
		}
		node, msgs := parseRow(rec, cols)
		if len(msgs) == 0 {
			if first, dup := seen[node.Name]; dup {
				msgs = append(msgs, fmt.Sprintf("node_name %q repeats line %d", node.Name, first))
			} else {
				seen[node.Name] = line
			}
		}
		for _, m := range msgs {
			bad = append(bad, RowError{Line: line, Msg: m})
		}
		if len(msgs) == 0 {
			nodes = append(nodes, node)
		}
	}
	if len(bad) > 0 {
		return nil, &ParseError{Rows: bad}
	}
	if len(nodes) == 0 {
		return nil, &ParseError{Rows: []RowError{{Line: 0, Msg: "no nodes: the file has a header but no rows"}}}
	}
	return nodes, nil
}

func newReader(data []byte) *csv.Reader {
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = false
	return cr
}

// countRecords counts the data rows of a document (for progress). Syntax
// errors end the count; parse reports them.
func countRecords(data []byte) int {
	cr := newReader(data)
	cr.ReuseRecord = true
	n := -1 // the header
	for {
		_, err := cr.Read()
		if err != nil && !errors.Is(err, csv.ErrFieldCount) {
			return max(n, 0)
		}
		n++
	}
}

// csvRowError converts an encoding/csv error into a RowError.
func csvRowError(err error) RowError {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return RowError{Line: pe.Line, Msg: "csv syntax: " + pe.Err.Error()}
	}
	return RowError{Msg: "csv syntax: " + err.Error()}
}

// firstInvalidLine finds the line of the first invalid UTF-8 byte.
func firstInvalidLine(data []byte) int {
	line := 1
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		if r == utf8.RuneError && size <= 1 {
			return line
		}
		if r == '\n' {
			line++
		}
		data = data[size:]
	}
	return line
}

// headerKey reduces a header cell to lower-case letters: "Question(User
// Says)" -> "questionusersays".
func headerKey(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func parseHeader(header []string) (columns, string) {
	cols := columns{name: -1, userSays: -1, botSays: -1, n: len(header)}
	for i, h := range header {
		var dst *int
		switch headerKey(h) {
		case "nodename", "node", "name":
			dst = &cols.name
		case "usersays", "questionusersays", "question", "questions":
			dst = &cols.userSays
		case "botsays", "answerbotsays", "answer", "answers":
			dst = &cols.botSays
		default:
			return cols, fmt.Sprintf("header: unknown column %q (want node_name,user_says,bot_says)", truncate(h, 40))
		}
		if *dst >= 0 {
			return cols, fmt.Sprintf("header: column %q appears twice", truncate(h, 40))
		}
		*dst = i
	}
	var missing []string
	if cols.name < 0 {
		missing = append(missing, "node_name")
	}
	if cols.userSays < 0 {
		missing = append(missing, "user_says")
	}
	if cols.botSays < 0 {
		missing = append(missing, "bot_says")
	}
	if len(missing) > 0 {
		return cols, "header: missing column " + strings.Join(missing, ", ") + " (want node_name,user_says,bot_says)"
	}
	return cols, ""
}

// parseRow validates one record; it returns every problem of the row.
func parseRow(rec []string, cols columns) (ivr.FAQNode, []string) {
	var msgs []string
	for i, f := range rec {
		if len(f) > MaxFieldBytes {
			msgs = append(msgs, fmt.Sprintf("field %d is longer than %d bytes", i+1, MaxFieldBytes))
		}
	}
	if len(msgs) > 0 {
		return ivr.FAQNode{}, msgs
	}

	name := strings.TrimSpace(rec[cols.name])
	switch {
	case name == "":
		msgs = append(msgs, "node_name is empty")
	case len(name) > MaxNameBytes:
		msgs = append(msgs, fmt.Sprintf("node_name is longer than %d bytes", MaxNameBytes))
	case strings.ContainsFunc(name, unicode.IsControl):
		msgs = append(msgs, "node_name contains a control character")
	}

	userSays := splitPhrases(rec[cols.userSays], UserSaysSeparator, false)
	userSays = dedupeFold(userSays)
	switch {
	case len(userSays) == 0:
		msgs = append(msgs, "user_says is empty")
	case len(userSays) > MaxUserSays:
		msgs = append(msgs, fmt.Sprintf("user_says has %d phrases, at most %d allowed", len(userSays), MaxUserSays))
	}
	for _, u := range userSays {
		if len(u) > MaxUserSaysBytes {
			msgs = append(msgs, fmt.Sprintf("user_says phrase %q is longer than %d bytes", truncate(u, 30), MaxUserSaysBytes))
			break
		}
	}

	botSays := splitPhrases(rec[cols.botSays], BotSaysSeparator, true)
	switch {
	case len(botSays) == 0:
		msgs = append(msgs, "bot_says is empty")
	case len(botSays) > MaxBotSays:
		msgs = append(msgs, fmt.Sprintf("bot_says has %d messages, at most %d allowed", len(botSays), MaxBotSays))
	}
	for _, b := range botSays {
		if len(b) > MaxBotSaysBytes {
			msgs = append(msgs, fmt.Sprintf("bot_says message %q is longer than %d bytes", truncate(b, 30), MaxBotSaysBytes))
			break
		}
	}
	if len(msgs) > 0 {
		return ivr.FAQNode{}, msgs
	}
	return ivr.FAQNode{Name: name, UserSays: userSays, BotSays: botSays, Active: true}, nil
}

// splitPhrases splits s at sep, trims each part and drops empty ones.
func splitPhrases(s, sep string, foldSep bool) []string {
	var parts []string
	if foldSep {
		parts = splitFold(s, sep)
	} else {
		parts = strings.Split(s, sep)
	}
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// splitFold splits s at every case-insensitive occurrence of the ASCII
// separator sep.
func splitFold(s, sep string) []string {
	lower := asciiLower(s) // keeps byte offsets, unlike strings.ToLower
	var parts []string
	for {
		i := strings.Index(lower, sep)
		if i < 0 {
			return append(parts, s)
		}
		parts = append(parts, s[:i])
		s, lower = s[i+len(sep):], lower[i+len(sep):]
	}
}

// asciiLower lower-cases ASCII letters only, keeping byte offsets.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// dedupeFold drops phrases that repeat an earlier one ignoring case.
func dedupeFold(in []string) []string {
	seen := make(map[string]bool, len(in))
	out := in[:0]
	for _, p := range in {
		k := strings.ToLower(p)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, p)
	}
	return out
}

// truncate shortens s to at most n runes for error messages.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}
