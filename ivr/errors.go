package ivr

import "errors"

// Errors shared by the store and its consumers. Package store re-exports
// them, so callers may test with either name.
var (
	// ErrNotFound means the row asked for does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict means a unique key already exists (a duplicate message
	// external id, a connection identifier, a call sid).
	ErrConflict = errors.New("store: conflict")
	// ErrVersionConflict means an optimistic update lost against another
	// writer: re-read and retry.
	ErrVersionConflict = errors.New("store: version conflict")
	// ErrLocked means a call lock is held by another owner.
	ErrLocked = errors.New("store: locked")
)

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
func isConflict(err error) bool { return errors.Is(err, ErrConflict) }
