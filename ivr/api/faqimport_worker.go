package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot/faq"
)

// maxTaskErrors caps the problems one failed import task keeps.
const maxTaskErrors = 100

// errUploadLost is the status of a task whose stored CSV is gone.
const errUploadLost = "the uploaded csv_file was not kept; submit it again"

// DefaultTaskLease is how long a worker holds a claimed import task
// before another worker may take it over; the worker renews it as the
// import progresses.
const DefaultTaskLease = 2 * time.Minute

// Run is the FAQ import worker: it claims open tasks one at a time,
// oldest first, until ctx ends. A task is claimed atomically in the store
// ([store.Store.ClaimTask]: a conditional UPDATE … RETURNING, with FOR
// UPDATE SKIP LOCKED on PostgreSQL) and leased to this worker, so any
// number of koel nodes on one database can run workers and no import is
// applied twice. Tasks a previous process left pending, or running with a
// released or expired lease, are claimed again: the stored CSV is imported
// from the start in one ReplaceFAQ transaction, which either commits the
// whole file or nothing, so a task cut short by a restart is never
// half-applied. Run returns nil when ctx ends; a task interrupted by it
// stays running, its lease released, and the next worker resumes it.
func (f *FAQImport) Run(ctx context.Context) error {
	wake := f.wakeCh()
	for {
		if err := f.drain(ctx); err != nil && ctx.Err() == nil && f.Logger != nil {
			f.Logger.ErrorContext(ctx, "faq import worker", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		}
	}
}

func (f *FAQImport) lease() time.Duration {
	if f.Lease > 0 {
		return f.Lease
	}
	return DefaultTaskLease
}

func (f *FAQImport) workerID() string {
	f.workerOnce.Do(func() {
		f.worker = f.WorkerID
		if f.worker == "" {
			f.worker = "faq-import-" + newUUID()
		}
	})
	return f.worker
}

// drain claims and applies open tasks until none is left.
func (f *FAQImport) drain(ctx context.Context) error {
	var errs []error
	for ctx.Err() == nil {
		t, err := f.Store.ClaimTask(ctx, FAQImportKind, f.workerID(), f.lease())
		if errors.Is(err, ivr.ErrNotFound) {
			break
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("claim faq import task: %w", err))
			break
		}
		if err := f.apply(ctx, t); err != nil {
			errs = append(errs, fmt.Errorf("task %s: %w", t.ID, err))
		}
	}
	return errors.Join(errs...)
}

// apply runs one claimed task to its end (or until ctx ends, or the lease
// is lost).
func (f *FAQImport) apply(parent context.Context, t ivr.Task) error {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	defer func() {
		if parent.Err() != nil {
			// Shutdown: let the next worker resume the task at once.
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(parent), 5*time.Second)
			defer rcancel()
			_ = f.Store.ReleaseTask(rctx, t.ID, f.workerID())
		}
	}()
	input, err := f.Store.GetTaskInput(ctx, t.ID)
	if err != nil {
		return fmt.Errorf("get input: %w", err)
	}
	if len(input) == 0 {
		return f.fail(ctx, t, []string{errUploadLost})
	}
	t.Status, t.Done, t.Errors = ivr.TaskRunning, 0, nil
	if err := f.Store.UpdateTask(ctx, t); err != nil {
		return fmt.Errorf("mark running: %w", err)
	}
	written := 0
	progress := func(done, total int) {
		// A status write per tenth of the file keeps polling informative
		// without a write per 256 rows; each renews the lease.
		if done != 0 && done < total && done-written < max(total/10, 1) {
			return
		}
		written = done
		if err := f.Store.ExtendTaskLease(ctx, t.ID, f.workerID(), f.lease()); errors.Is(err, ivr.ErrNotFound) {
			cancel(errLeaseLost)
			return
		}
		t.Done, t.Total = done, total
		if err := f.Store.UpdateTask(ctx, t); err != nil && ctx.Err() == nil && f.Logger != nil {
			f.Logger.WarnContext(ctx, "faq import progress", "task", t.ID, "error", err)
		}
	}
	res, err := faq.Import(ctx, f.Store, t.BusinessID, bytes.NewReader(input), faq.ImportOptions{MaxBytes: f.maxBytes(), Progress: progress})
	var pe *faq.ParseError
	switch {
	case errors.Is(context.Cause(ctx), errLeaseLost):
		return fmt.Errorf("%w: another worker took the task over", errLeaseLost)
	case err == nil:
		t.Status, t.Done, t.Total, t.Errors = ivr.TaskComplete, res.Nodes, res.Nodes, nil
		if err := f.Store.FinishTask(ctx, t); err != nil {
			return fmt.Errorf("mark complete: %w", err)
		}
		if f.Logger != nil {
			f.Logger.InfoContext(ctx, "faq imported", "task", t.ID, "business", t.BusinessID, "nodes", res.Nodes, "faq_version", res.Version)
		}
		return nil
	case ctx.Err() != nil:
		return ctx.Err() // still running: the next Run resumes it
	case errors.As(err, &pe):
		msgs := pe.Messages()
		if len(msgs) > maxTaskErrors {
			msgs = append(msgs[:maxTaskErrors:maxTaskErrors], fmt.Sprintf("and %d more problems", len(pe.Rows)-maxTaskErrors))
		}
		return f.fail(ctx, t, msgs)
	case errors.Is(err, faq.ErrTooLarge):
		return f.fail(ctx, t, []string{fmt.Sprintf("csv_file is larger than %d bytes", f.maxBytes())})
	default:
		if f.Logger != nil {
			f.Logger.ErrorContext(ctx, "faq import failed", "task", t.ID, "business", t.BusinessID, "error", err)
		}
		return f.fail(ctx, t, []string{"the import could not be stored; the previous FAQ is unchanged"})
	}
}

// errLeaseLost ends an import whose lease another worker took over.
var errLeaseLost = errors.New("faq import: task lease lost")

// fail finishes a task as failed with the problems found.
func (f *FAQImport) fail(ctx context.Context, t ivr.Task, msgs []string) error {
	t.Status, t.Errors = ivr.TaskFailed, msgs
	if err := f.Store.FinishTask(ctx, t); err != nil {
		return fmt.Errorf("mark failed: %w", err)
	}
	return nil
}
