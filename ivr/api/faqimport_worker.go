package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/bot/faq"
)

// maxTaskErrors caps the problems one failed import task keeps.
const maxTaskErrors = 100

// errUploadLost is the status of a task whose stored CSV is gone.
const errUploadLost = "the uploaded csv_file was not kept; submit it again"

// Run is the FAQ import worker: it applies pending tasks one at a time,
// oldest first, until ctx ends. When it starts it first runs again every
// task a previous process left pending or running: the stored CSV is
// imported from the start in one ReplaceFAQ transaction, which either
// commits the whole file or nothing, so a task cut short by a restart is
// never half-applied (re-applying a file that did commit before the crash
// leaves the same nodes). Run returns nil when ctx ends; a task
// interrupted by it stays running and is resumed by the next Run.
//
// One Run per database: two processes running workers on one database
// would both apply a task (harmlessly, but twice).
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

// drain applies every open task.
func (f *FAQImport) drain(ctx context.Context) error {
	tasks, err := f.Store.ListTasks(ctx, FAQImportKind, []ivr.TaskStatus{ivr.TaskPending, ivr.TaskRunning})
	if err != nil {
		return fmt.Errorf("list faq import tasks: %w", err)
	}
	var errs []error
	for _, t := range tasks {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := f.apply(ctx, t); err != nil {
			errs = append(errs, fmt.Errorf("task %s: %w", t.ID, err))
		}
	}
	return errors.Join(errs...)
}

// apply runs one task to its end (or until ctx ends).
func (f *FAQImport) apply(ctx context.Context, t ivr.Task) error {
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
		// without a write per 256 rows.
		if done != 0 && done < total && done-written < max(total/10, 1) {
			return
		}
		written = done
		t.Done, t.Total = done, total
		if err := f.Store.UpdateTask(ctx, t); err != nil && ctx.Err() == nil && f.Logger != nil {
			f.Logger.WarnContext(ctx, "faq import progress", "task", t.ID, "error", err)
		}
	}
	res, err := faq.Import(ctx, f.Store, t.BusinessID, bytes.NewReader(input), faq.ImportOptions{MaxBytes: f.maxBytes(), Progress: progress})
	var pe *faq.ParseError
	switch {
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

// fail finishes a task as failed with the problems found.
func (f *FAQImport) fail(ctx context.Context, t ivr.Task, msgs []string) error {
	t.Status, t.Errors = ivr.TaskFailed, msgs
	if err := f.Store.FinishTask(ctx, t); err != nil {
		return fmt.Errorf("mark failed: %w", err)
	}
	return nil
}
