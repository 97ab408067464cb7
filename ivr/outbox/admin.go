package outbox

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/koelvoice/koel/ivr"
	"github.com/koelvoice/koel/ivr/api"
	"github.com/koelvoice/koel/ivr/store"
)

// Paths of the dead-letter admin API, under the admin prefix (/admin/v1).
const (
	PathDeadLetters = "/outbox/dead"
	PathRedeliver   = "/outbox/dead/redeliver"
	PathPurge       = "/outbox/dead/purge"
)

// MaxAdminPage caps one page of the dead-letter listing.
const MaxAdminPage = 1000

// AdminStore is what the dead-letter admin API and CLI need from the store.
type AdminStore interface {
	QueryOutbox(ctx context.Context, q store.OutboxQuery) ([]ivr.OutboxItem, error)
	RedeliverOutbox(ctx context.Context, sel store.DeadLetters, now time.Time) (int64, error)
	PurgeOutbox(ctx context.Context, sel store.DeadLetters) (int64, error)
}

// Admin serves the dead-letter admin API: list, redeliver and purge the
// items the dispatcher gave up on. Mount it on a router that checks the
// admin token ([RequireAdminToken]).
type Admin struct {
	Store AdminStore
	// Notifier is woken after a redelivery (the dispatcher; may be nil).
	Notifier interface{ Notify() }
	Logger   *slog.Logger
	// Now returns the time (nil: time.Now).
	Now func() time.Time
}

// Routes registers the admin API on r (the /admin/v1 subrouter).
func (a *Admin) Routes(r *mux.Router) {
	r.HandleFunc(PathDeadLetters, a.list).Methods(http.MethodGet)
	r.HandleFunc(PathRedeliver, a.redeliver).Methods(http.MethodPost)
	r.HandleFunc(PathPurge, a.purge).Methods(http.MethodPost)
}

// DeadLetter is one dead-lettered item as the admin API and CLI show it:
// never its body, and its URL with query values masked.
type DeadLetter struct {
	ID             int64  `json:"id"`
	ConnectionID   int64  `json:"connection_id"`
	Channel        string `json:"channel"`
	Recipient      string `json:"recipient"`
	IdempotencyKey string `json:"idempotency_key"`
	URL            string `json:"url,omitempty"`
	BodyBytes      int    `json:"body_bytes"`
	Attempts       int    `json:"attempts"`
	LastError      string `json:"last_error"`
	CreatedAt      string `json:"created_at"`
	LastAttemptDue string `json:"last_attempt_due,omitempty"`
}

// NewDeadLetter is the admin view of it.
func NewDeadLetter(it ivr.OutboxItem) DeadLetter {
	dl := DeadLetter{
		ID: it.ID, ConnectionID: it.ConnectionID, Channel: string(channelOf(it)), Recipient: it.Recipient,
		IdempotencyKey: it.IdempotencyKey, BodyBytes: len(it.Body), Attempts: it.Attempts, LastError: it.LastError,
		CreatedAt: ISOTime(it.CreatedAt),
	}
	if it.URL != "" {
		dl.URL = RedactURL(it.URL)
	}
	if !it.NextAttemptAt.IsZero() {
		dl.LastAttemptDue = ISOTime(it.NextAttemptAt)
	}
	return dl
}

// DeadLetterPage is the answer of GET /admin/v1/outbox/dead.
type DeadLetterPage struct {
	Items []DeadLetter `json:"items"`
	// NextAfterID continues the listing (?after_id=); 0 at the end.
	NextAfterID int64 `json:"next_after_id"`
}

// Selection is the body of the redeliver and purge requests: dead letters
// by id, by connection, or all of them ({"all": true}); set fields combine.
type Selection struct {
	IDs          []int64 `json:"ids"`
	ConnectionID int64   `json:"connection_id"`
	All          bool    `json:"all"`
}

func (sel Selection) deadLetters() (store.DeadLetters, error) {
	if len(sel.IDs) == 0 && sel.ConnectionID == 0 && !sel.All {
		return store.DeadLetters{}, api.Errorf(http.StatusBadRequest, `select dead letters with "ids", "connection_id" or "all": true`)
	}
	if len(sel.IDs) > MaxAdminPage {
		return store.DeadLetters{}, api.Errorf(http.StatusBadRequest, "at most %d ids at once", MaxAdminPage)
	}
	for _, id := range sel.IDs {
		if id <= 0 {
			return store.DeadLetters{}, api.Errorf(http.StatusBadRequest, "ids must be positive")
		}
	}
	if sel.ConnectionID < 0 {
		return store.DeadLetters{}, api.Errorf(http.StatusBadRequest, "connection_id must be positive")
	}
	return store.DeadLetters{IDs: sel.IDs, ConnectionID: sel.ConnectionID, All: sel.All}, nil
}

func (a *Admin) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func queryInt(r *http.Request, name string, min, max, def int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < min || n > max {
		return 0, api.Errorf(http.StatusBadRequest, "%s must be a whole number from %d to %d", name, min, max)
	}
	return n, nil
}

func (a *Admin) list(w http.ResponseWriter, r *http.Request) {
	connID, err := queryInt(r, "connection_id", 0, 1<<62, 0)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	after, err := queryInt(r, "after_id", 0, 1<<62, 0)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	limit, err := queryInt(r, "limit", 1, MaxAdminPage, 100)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	items, err := a.Store.QueryOutbox(r.Context(), store.OutboxQuery{Status: ivr.OutboxDead, ConnectionID: connID, AfterID: after, Limit: int(limit)})
	if err != nil {
		api.Fail(w, r, a.Logger, "list dead letters", err)
		return
	}
	page := DeadLetterPage{Items: make([]DeadLetter, 0, len(items))}
	for _, it := range items {
		page.Items = append(page.Items, NewDeadLetter(it))
	}
	if len(items) == int(limit) {
		page.NextAfterID = items[len(items)-1].ID
	}
	api.WriteJSON(w, http.StatusOK, page)
}

func (a *Admin) selection(w http.ResponseWriter, r *http.Request) (store.DeadLetters, bool) {
	var sel Selection
	if err := api.DecodeJSON(w, r, 64<<10, &sel); err != nil {
		api.WriteError(w, err)
		return store.DeadLetters{}, false
	}
	dl, err := sel.deadLetters()
	if err != nil {
		api.WriteError(w, err)
		return store.DeadLetters{}, false
	}
	return dl, true
}

func (a *Admin) redeliver(w http.ResponseWriter, r *http.Request) {
	sel, ok := a.selection(w, r)
	if !ok {
		return
	}
	n, err := a.Store.RedeliverOutbox(r.Context(), sel, a.now())
	if err != nil {
		api.Fail(w, r, a.Logger, "redeliver dead letters", err)
		return
	}
	if n > 0 && a.Notifier != nil {
		a.Notifier.Notify()
	}
	if a.Logger != nil {
		a.Logger.InfoContext(r.Context(), "dead letters redelivered", "items", n, "connection_id", sel.ConnectionID, "all", sel.All)
	}
	api.WriteJSON(w, http.StatusOK, map[string]int64{"redelivered": n})
}

func (a *Admin) purge(w http.ResponseWriter, r *http.Request) {
	sel, ok := a.selection(w, r)
	if !ok {
		return
	}
	n, err := a.Store.PurgeOutbox(r.Context(), sel)
	if err != nil {
		api.Fail(w, r, a.Logger, "purge dead letters", err)
		return
	}
	if a.Logger != nil {
		a.Logger.InfoContext(r.Context(), "dead letters purged", "items", n, "connection_id", sel.ConnectionID, "all", sel.All)
	}
	api.WriteJSON(w, http.StatusOK, map[string]int64{"purged": n})
}

// ErrAdminDisabled is the answer of the admin API when no admin token is
// configured.
var ErrAdminDisabled = errors.New("admin API is disabled: set admin_token (KOEL_ADMIN_TOKEN)")

// RequireAdminToken is middleware for the /admin/v1 routes: the request
// must carry "Authorization: Bearer <token>", compared in constant time
// (over SHA-256 digests, so not even the length leaks). With an empty
// token every request is refused with 403.
func RequireAdminToken(token string) mux.MiddlewareFunc {
	want := sha256.Sum256([]byte(token))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if token == "" {
				api.WriteError(w, api.Errorf(http.StatusForbidden, "%s", ErrAdminDisabled.Error()))
				return
			}
			got, ok := api.BearerToken(r)
			sum := sha256.Sum256([]byte(got))
			if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
				api.WriteError(w, api.Errorf(http.StatusUnauthorized, "invalid admin token"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
