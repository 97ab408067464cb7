// Package store persists koel's data: businesses, connections, users,
// conversations, messages, voice calls and their turns, FAQ nodes, tasks and
// the delivery outbox.
//
// [Store] has two implementations with the same behaviour and the same test
// suite: SQLite (modernc.org/sqlite, the embedded default) and PostgreSQL
// (github.com/jackc/pgx/v5, for several koel nodes sharing one database).
// Schema changes are embedded SQL migrations applied by [Open].
package store

import (
	"context"
	"time"

	"github.com/koelvoice/koel/ivr"
)

// Errors returned by every [Store] implementation; they are the same values
// as ivr's, so packages that cannot import store test with those. Wrapped
// errors keep them reachable with errors.Is.
var (
	// ErrNotFound means the row asked for does not exist.
	ErrNotFound = ivr.ErrNotFound
	// ErrConflict means a unique key already exists (a duplicate message
	// external id, a connection identifier, a call sid).
	ErrConflict = ivr.ErrConflict
	// ErrVersionConflict means an optimistic update lost against another
	// writer: re-read and retry.
	ErrVersionConflict = ivr.ErrVersionConflict
	// ErrLocked means a call lock is held by another owner.
	ErrLocked = ivr.ErrLocked
	// ErrInvalid means the input was rejected before anything was written:
	// an empty or oversized key, text that is not valid UTF-8 or holds a NUL
	// byte, an FAQ import with an empty or duplicate node name, an unknown
	// enum value, a non-positive lease. It is ivr.ErrInvalid, so channels
	// map it to 400 with ivr.HTTPStatus.
	ErrInvalid = ivr.ErrInvalid
)

// Store is everything koel keeps. Implementations are safe for concurrent
// use. Every method that writes more than one row does so in one transaction:
// on error nothing was written.
type Store interface {
	// Ping checks the database is reachable (for /readyz).
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error

	// CreateBusiness inserts b and sets b.ID and b.CreatedAt. When b.ID is
	// non-zero that id is used (the demo business is id 1).
	CreateBusiness(ctx context.Context, b *ivr.Business) error
	// GetBusiness returns ErrNotFound when id does not exist.
	GetBusiness(ctx context.Context, id int64) (ivr.Business, error)
	// UpdateBusiness writes Name, TokenHash, ClientID, FallbackMessage, Active,
	// Bot and BotURL.
	UpdateBusiness(ctx context.Context, b ivr.Business) error

	// CreateConnection inserts c and sets c.ID; ErrConflict when the
	// channel/identifier pair exists.
	CreateConnection(ctx context.Context, c *ivr.Connection) error
	// UpdateConnection writes Active and Settings of the connection c.ID.
	UpdateConnection(ctx context.Context, c ivr.Connection) error
	// GetConnection finds a connection by channel and identifier.
	GetConnection(ctx context.Context, channel ivr.Channel, identifier string) (ivr.Connection, error)
	// GetConnectionByID finds a connection by id.
	GetConnectionByID(ctx context.Context, id int64) (ivr.Connection, error)
	// ListConnections lists a business's connections ordered by id.
	ListConnections(ctx context.Context, businessID int64) ([]ivr.Connection, error)

	// GetUser finds a user by business, channel and external id.
	GetUser(ctx context.Context, businessID int64, channel ivr.Channel, externalID string) (ivr.User, error)
	// EnsureUser returns the user, creating it with the given registered flag
	// when it does not exist. An existing user is returned unchanged.
	EnsureUser(ctx context.Context, businessID int64, channel ivr.Channel, externalID string, registered bool) (ivr.User, error)
	// RegisterUser creates the user or marks an existing one registered.
	RegisterUser(ctx context.Context, businessID int64, channel ivr.Channel, externalID string) (ivr.User, error)
	// GetUserByID finds a user by id.
	GetUserByID(ctx context.Context, id int64) (ivr.User, error)
	// SetUserProfile creates or replaces the profile of p.UserID and sets
	// p.UpdatedAt; ErrInvalid for a field over MaxProfileFieldBytes (source:
	// MaxURLBytes), invalid UTF-8 or a NUL byte.
	SetUserProfile(ctx context.Context, p *ivr.UserProfile) error
	// GetUserProfile returns a user's profile; ErrNotFound when none was set.
	GetUserProfile(ctx context.Context, userID int64) (ivr.UserProfile, error)

	// OpenConversation returns the user's open conversation with the
	// business, creating one (with the next ConversationNo, handoff "bot")
	// when there is none.
	OpenConversation(ctx context.Context, businessID, userID int64) (ivr.Conversation, error)
	// AppendInbound stores a user's message in one transaction with what
	// it needs: the user (when user.ID is 0, the user with user's business,
	// channel and external id, created with user.Registered when there is
	// none), the user's open conversation with the business (created as
	// OpenConversation does) and m, whose BusinessID, UserID,
	// ConversationID, ID and CreatedAt are set from them. It returns the
	// user and the conversation. A message whose (business, channel,
	// external id) exists already fails the call with ErrConflict and
	// stores nothing; invalid input fails with ErrInvalid and stores
	// nothing. On failure m is left as it was.
	AppendInbound(ctx context.Context, user ivr.User, m *ivr.Message) (ivr.User, ivr.Conversation, error)
	// GetConversation finds a conversation by id.
	GetConversation(ctx context.Context, id int64) (ivr.Conversation, error)
	// GetConversationByNo finds a user's conversation by its number.
	GetConversationByNo(ctx context.Context, userID, conversationNo int64) (ivr.Conversation, error)
	// CloseConversation marks a conversation closed; closing a closed one is
	// not an error.
	CloseConversation(ctx context.Context, id int64) error
	// SetHandoff changes who answers the conversation.
	SetHandoff(ctx context.Context, conversationID int64, state ivr.HandoffState) error

	// AppendMessages inserts the messages and the outbox items in one
	// transaction and sets their IDs and CreatedAt. A message whose
	// (business, channel, external id) already exists fails the whole call
	// with ErrConflict.
	AppendMessages(ctx context.Context, msgs []*ivr.Message, outbox []*ivr.OutboxItem) error
	// AppendMessagesThen inserts msgs (setting their IDs and CreatedAt), then,
	// inside the same transaction, calls then with them and inserts the
	// outbox items it returns. An error from then rolls everything back and
	// is returned wrapped. It lets a delivery carry the id of the message it
	// delivers while both are stored atomically.
	AppendMessagesThen(ctx context.Context, msgs []*ivr.Message, then func(stored []*ivr.Message) ([]*ivr.OutboxItem, error)) error
	// GetMessageByExternalID finds an inbound message by its platform id.
	GetMessageByExternalID(ctx context.Context, businessID int64, channel ivr.Channel, externalID string) (ivr.Message, error)
	// ListMessages returns a conversation's messages oldest first; limit <= 0
	// means all, otherwise the newest limit messages (still oldest first).
	ListMessages(ctx context.Context, conversationID int64, limit int) ([]ivr.Message, error)
	// MessagesAfter returns the messages of a conversation with ID > afterID,
	// oldest first.
	MessagesAfter(ctx context.Context, conversationID, afterID int64) ([]ivr.Message, error)

	// CreateCall inserts a call with Version 1; ErrConflict when the sid exists.
	CreateCall(ctx context.Context, c *ivr.Call) error
	// GetCall finds a call by sid.
	GetCall(ctx context.Context, sid string) (ivr.Call, error)
	// UpdateCall writes c if the stored version equals c.Version and then
	// increments c.Version; otherwise ErrVersionConflict and nothing changes.
	UpdateCall(ctx context.Context, c *ivr.Call) error
	// AcquireCallLock takes the lock of a call sid for owner until now+ttl;
	// ErrLocked while another owner holds an unexpired lock. The same owner
	// may re-acquire (extend) its own lock.
	AcquireCallLock(ctx context.Context, sid, owner string, ttl time.Duration) error
	// ReleaseCallLock releases owner's lock; releasing a lock one does not
	// hold is not an error.
	ReleaseCallLock(ctx context.Context, sid, owner string) error
	// AddTurn inserts a turn and sets its ID and CreatedAt.
	AddTurn(ctx context.Context, t *ivr.Turn) error
	// ListTurns returns a call's turns in Seq order.
	ListTurns(ctx context.Context, sid string) ([]ivr.Turn, error)
	// ListTurnsSince returns up to limit turns stored at or after since,
	// newest first (koel report).
	ListTurnsSince(ctx context.Context, since time.Time, limit int) ([]ivr.Turn, error)
	// CountActiveCalls counts calls that have not ended (for the active-calls
	// gauge at start-up).
	CountActiveCalls(ctx context.Context) (int, error)
	// ListIdleCalls returns up to limit calls that have not ended and were
	// last updated before before, oldest first.
	ListIdleCalls(ctx context.Context, before time.Time, limit int) ([]ivr.Call, error)

	// ReplaceFAQ applies an FAQ import with upsert semantics, in one
	// transaction: every existing node of the business becomes inactive;
	// each given node (by Name) is created, or updated and re-activated.
	// The business's FAQVersion is incremented and returned.
	ReplaceFAQ(ctx context.Context, businessID int64, nodes []ivr.FAQNode) (int64, error)
	// ListFAQ returns the business's nodes ordered by name; activeOnly
	// drops inactive ones.
	ListFAQ(ctx context.Context, businessID int64, activeOnly bool) ([]ivr.FAQNode, error)

	// CreateTask inserts a task (ID chosen by the caller).
	CreateTask(ctx context.Context, t *ivr.Task) error
	// UpdateTask writes Status, Total, Done and Errors.
	UpdateTask(ctx context.Context, t ivr.Task) error
	// GetTask finds a task by id.
	GetTask(ctx context.Context, id string) (ivr.Task, error)
	// CreateTaskWithInput inserts a task like CreateTask, with its input
	// (at most MaxTaskInputBytes) in the same row, so the task can be run
	// again after a restart.
	CreateTaskWithInput(ctx context.Context, t *ivr.Task, input []byte) error
	// GetTaskInput returns a task's input; nil once the task finished.
	GetTaskInput(ctx context.Context, id string) ([]byte, error)
	// FinishTask writes Status, Total, Done and Errors like UpdateTask and
	// drops the task's input.
	FinishTask(ctx context.Context, t ivr.Task) error
	// ListTasks lists the tasks of a kind in the given statuses, oldest
	// first.
	ListTasks(ctx context.Context, kind string, statuses []ivr.TaskStatus) ([]ivr.Task, error)
	// PutAPIStep creates or replaces a business's API step for a node.
	PutAPIStep(ctx context.Context, a APIStep) error
	// ListAPISteps lists a business's API steps ordered by node.
	ListAPISteps(ctx context.Context, businessID int64) ([]APIStep, error)
	// GetAPIStep finds a business's API step by node.
	GetAPIStep(ctx context.Context, businessID int64, node string) (APIStep, error)
	// DeleteAPIStep removes a business's API step.
	DeleteAPIStep(ctx context.Context, businessID int64, node string) error
	// ListBusinesses lists every business, ordered by id.
	ListBusinesses(ctx context.Context) ([]ivr.Business, error)

	// ClaimTask atomically takes the oldest task of kind that is pending,
	// or running without a live lease: it becomes running, leased to
	// worker until now+lease. ErrNotFound when there is none. Two workers
	// (on one database, in any number of processes) never get one task
	// while its lease lives.
	ClaimTask(ctx context.Context, kind, worker string, lease time.Duration) (ivr.Task, error)
	// ExtendTaskLease moves the lease of a task worker holds to now+lease;
	// ErrNotFound when worker no longer holds it.
	ExtendTaskLease(ctx context.Context, id, worker string, lease time.Duration) error
	// ReleaseTask drops worker's lease on a running task (at shutdown), so
	// the next worker resumes it at once.
	ReleaseTask(ctx context.Context, id, worker string) error
	// FindBusinessesByName lists the businesses with exactly that name,
	// ordered by id.
	FindBusinessesByName(ctx context.Context, name string) ([]ivr.Business, error)

	// ClaimOutbox leases up to limit pending items due at or before now
	// (and not leased by someone else) until now+lease, oldest first, and
	// returns them. Two dispatchers never claim the same item at once.
	// An item waits while an earlier pending item of its conversation (same
	// connection and recipient) is leased or not yet due, and items of
	// skipConnections are left alone.
	ClaimOutbox(ctx context.Context, now time.Time, limit int, lease time.Duration, skipConnections ...int64) ([]ivr.OutboxItem, error)
	// ReleaseOutbox gives claimed pending items back without counting an
	// attempt: their lease is cleared and they are due at next.
	ReleaseOutbox(ctx context.Context, ids []int64, next time.Time) error
	// MarkDelivered records a successful delivery (Attempts+1).
	MarkDelivered(ctx context.Context, id int64, at time.Time) error
	// MarkDeliveredMany records successful deliveries of several items in one
	// transaction (each Attempts+1); when any id does not exist nothing
	// changes and ErrNotFound is returned.
	MarkDeliveredMany(ctx context.Context, ids []int64, at time.Time) error
	// MarkAttemptFailed records a failed attempt (Attempts+1, LastError),
	// clears the lease and schedules the next attempt at next; when dead is
	// true the item becomes OutboxDead instead.
	MarkAttemptFailed(ctx context.Context, id int64, lastErr string, next time.Time, dead bool) error
	// GetOutboxItem finds an item by id.
	GetOutboxItem(ctx context.Context, id int64) (ivr.OutboxItem, error)
	// ListOutbox lists items of a status, oldest first (limit <= 0: all).
	ListOutbox(ctx context.Context, status ivr.OutboxStatus, limit int) ([]ivr.OutboxItem, error)
	// QueryOutbox lists one page of items, oldest first.
	QueryOutbox(ctx context.Context, q OutboxQuery) ([]ivr.OutboxItem, error)
	// ExpireOutbox dead-letters the pending, unleased items whose retry
	// horizon started before startedBefore, with reason in LastError; it
	// returns how many.
	ExpireOutbox(ctx context.Context, now, startedBefore time.Time, reason string) (int64, error)
	// RedeliverOutbox makes the selected dead letters pending again, due
	// now, with Attempts 0 and a new retry horizon from now; it returns
	// how many.
	RedeliverOutbox(ctx context.Context, sel DeadLetters, now time.Time) (int64, error)
	// PurgeOutbox deletes the selected dead letters; it returns how many.
	PurgeOutbox(ctx context.Context, sel DeadLetters) (int64, error)
	// OutboxStats counts pending and dead items per channel, with the
	// oldest one's creation time.
	OutboxStats(ctx context.Context) ([]OutboxStat, error)

	HandoffStore
}
