package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/koelvoice/koel/ivr"
)

// API steps and the business list of the admin API (migration 00121).

// MaxAPIStepBytes caps the stored declaration of one API step.
const MaxAPIStepBytes = 16 << 10

// APIStep is one stored API step: the declaration of node's call of the
// business's API, as JSON (the faq package owns its shape and validates
// it; the store checks it is a JSON object).
type APIStep struct {
	BusinessID int64
	Node       string
	Spec       json.RawMessage
	UpdatedAt  time.Time
}

const apiStepCols = `business_id, node, spec, updated_at`

func scanAPIStep(r rowScanner) (APIStep, error) {
	var a APIStep
	var spec string
	err := r.Scan(&a.BusinessID, &a.Node, &spec, timeCol{&a.UpdatedAt})
	a.Spec = json.RawMessage(spec)
	return a, err
}

// PutAPIStep implements [Store]: creates or replaces the business's step
// for a.Node; ErrNotFound when the business does not exist.
func (s *sqlStore) PutAPIStep(ctx context.Context, a APIStep) error {
	op := fmt.Sprintf("put api step %.64q", a.Node)
	var v validator
	v.id("business", a.BusinessID)
	v.key("node", a.Node)
	if strings.TrimSpace(a.Node) == "" {
		v.fail("node is empty")
	}
	switch {
	case len(a.Spec) > MaxAPIStepBytes:
		v.fail("spec of %d bytes (limit %d)", len(a.Spec), MaxAPIStepBytes)
	case !json.Valid(a.Spec) || !strings.HasPrefix(strings.TrimSpace(string(a.Spec)), "{"):
		v.fail("spec is not a JSON object")
	}
	if v.err != nil {
		return fmt.Errorf("%s: %w", op, v.err)
	}
	if _, err := s.GetBusiness(ctx, a.BusinessID); err != nil {
		return fmt.Errorf("%s: business %d: %w", op, a.BusinessID, err)
	}
	_, err := s.writer().exec(ctx, `INSERT INTO api_steps (`+apiStepCols+`) VALUES (?, ?, ?, ?)
		ON CONFLICT (business_id, node) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`,
		a.BusinessID, a.Node, string(a.Spec), timeValue(s.clock()))
	if err != nil {
		return s.fail(op, err)
	}
	return nil
}

// ListAPISteps implements [Store]: ordered by node.
func (s *sqlStore) ListAPISteps(ctx context.Context, businessID int64) ([]APIStep, error) {
	return listRows(ctx, s, s.reader(), fmt.Sprintf("list api steps of business %d", businessID), scanAPIStep,
		`SELECT `+apiStepCols+` FROM api_steps WHERE business_id = ? ORDER BY node`, businessID)
}

// GetAPIStep implements [Store].
func (s *sqlStore) GetAPIStep(ctx context.Context, businessID int64, node string) (APIStep, error) {
	return getRow(ctx, s, s.reader(), fmt.Sprintf("get api step %.64q", node), scanAPIStep,
		`SELECT `+apiStepCols+` FROM api_steps WHERE business_id = ? AND node = ?`, businessID, node)
}

// DeleteAPIStep implements [Store]; ErrNotFound when there is none.
func (s *sqlStore) DeleteAPIStep(ctx context.Context, businessID int64, node string) error {
	op := fmt.Sprintf("delete api step %.64q", node)
	res, err := s.writer().exec(ctx, `DELETE FROM api_steps WHERE business_id = ? AND node = ?`, businessID, node)
	return s.mustAffect(op, res, err)
}

// ListBusinesses implements [Store]: every business, ordered by id.
func (s *sqlStore) ListBusinesses(ctx context.Context) ([]ivr.Business, error) {
	return listRows(ctx, s, s.reader(), "list businesses", scanBusiness,
		`SELECT `+businessCols+` FROM businesses ORDER BY id`)
}
