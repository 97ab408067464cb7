package faq

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/koelvoice/koel/ivr"
)

// Importer stores a parsed FAQ. [github.com/koelvoice/koel/ivr/store.Store]
// implements it: ReplaceFAQ applies the seed's upsert semantics (the
// business's existing nodes become inactive; each given node is created or
// updated by name and re-activated) in one transaction and returns the
// business's new FAQVersion.
type Importer interface {
	ReplaceFAQ(ctx context.Context, businessID int64, nodes []ivr.FAQNode) (int64, error)
}

// ImportOptions tune [Import].
type ImportOptions struct {
	// MaxBytes caps the input size; zero means DefaultMaxBytes. Negative is
	// an error.
	MaxBytes int64
	// Progress, when set, is called with the rows validated so far and the
	// rows in the file: first with (0, total), then every 256 rows while
	// validating, and once more with (total, total) after the nodes are
	// stored. It is not called after a failure. It runs on the importing
	// goroutine and must not block for long.
	Progress func(done, total int)
}

// ImportResult describes a successful import.
type ImportResult struct {
	// Nodes is how many nodes the file held (all now active).
	Nodes int
	// Version is the business's new FAQVersion.
	Version int64
}

// Import reads an FAQ CSV (see [ParseCSV]) and stores it for the business in
// one ReplaceFAQ call. The whole file is read and validated first: a file with
// any bad row returns a [*ParseError] listing them all, and a file that is
// too large returns [ErrTooLarge]; in both cases, and when ReplaceFAQ fails,
// the business's previous FAQ is left as it was.
func Import(ctx context.Context, dst Importer, businessID int64, r io.Reader, opts ImportOptions) (ImportResult, error) {
	if dst == nil {
		return ImportResult{}, errors.New("faq: import: nil Importer")
	}
	if businessID <= 0 {
		return ImportResult{}, fmt.Errorf("faq: import: invalid business id %d", businessID)
	}
	if opts.MaxBytes < 0 {
		return ImportResult{}, fmt.Errorf("faq: import: negative MaxBytes %d", opts.MaxBytes)
	}
	data, err := readLimited(r, opts.MaxBytes)
	if err != nil {
		return ImportResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return ImportResult{}, fmt.Errorf("faq: import: %w", err)
	}
	total := 0
	progress := func(done, t int) {
		total = t
		if opts.Progress != nil {
			opts.Progress(done, t)
		}
	}
	nodes, err := parse(data, progress)
	if err != nil {
		return ImportResult{}, err
	}
	for i := range nodes {
		nodes[i].BusinessID = businessID
	}
	version, err := dst.ReplaceFAQ(ctx, businessID, nodes)
	if err != nil {
		return ImportResult{}, fmt.Errorf("faq: import for business %d: %w", businessID, err)
	}
	if opts.Progress != nil {
		opts.Progress(max(total, len(nodes)), max(total, len(nodes)))
	}
	return ImportResult{Nodes: len(nodes), Version: version}, nil
}
